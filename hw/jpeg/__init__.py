"""The feature encoder in RTL: baseline JPEG (lossy) and zero-run-length + Huffman (lossless).

One block per module, each the RTL twin of one stage of the golden models (``golden.jpeg``,
``golden.entropy``, ``golden.lossless``), bit-exact:

* ``colour``: :class:`~hw.jpeg.colour.ColourConverter`, RGB pixels of an MCU -> its Y, Cb, Cr blocks
  (integer JFIF conversion, 4:2:0 2x2 averaging; ``golden.jpeg.colour_stage``), in the colour build only
* ``dct``: :class:`~hw.jpeg.dct.Dct2d`, row pass, double-buffered transpose, column pass
  (``golden.jpeg.dct_rows`` / ``dct_columns``)
* ``quantizer``: :class:`~hw.jpeg.quantizer.Quantizer`, loadable reciprocal table,
  ``(|c| R + 2**23) >> 24`` (``golden.jpeg.quantize_int``)
* ``zigzag``: :class:`~hw.jpeg.zigzag.ZigzagBuffer`, double-buffered block, scan order, end of block
  known in advance (``golden.jpeg.zigzag``)
* ``entropy``: :class:`~hw.jpeg.entropy.RunLengthCoder` (``golden.entropy.run_length_symbols``,
  ``extra_bits``, DC differences) and :class:`~hw.jpeg.entropy.HuffmanCoder` with loadable tables
  (``golden.entropy.huffman_encode``)
* ``bitpacker``: :class:`~hw.jpeg.bitpacker.BitPacker`, MSB-first packing, 0xFF stuffing, 1-bit padding
  (``golden.entropy.BitWriter``)
* ``encoder``: :class:`~hw.jpeg.encoder.Encoder`, the top: sample stream in, byte stream out
  (``golden.jpeg.encode_scan`` / ``golden.lossless.encode_payload``); ``Encoder(colour=True)`` codes
  3-component YCbCr images (4:4:4 / 4:2:0, interleaved MCUs, luminance and chrominance table sets, a DC
  predictor per component: :class:`~hw.jpeg.encoder.McuCounter`)
* ``host``: pure Python, the table images and sample streams a driver sends, and the containers around
  the RTL's bytes
"""
