"""The feature encoder in RTL: baseline JPEG (lossy) and zero-run-length + Huffman (lossless).

One block per module, each the RTL twin of one stage of the golden models (``golden.jpeg``,
``golden.entropy``, ``golden.lossless``), bit-exact:

=============  ================================================================  ==========================
module         block                                                             golden stage
=============  ================================================================  ==========================
``dct``        :class:`Dct2d`: row pass, double-buffered transpose, column pass  ``dct_rows``/``dct_columns``
``quantizer``  :class:`Quantizer`: loadable reciprocal table, ``(|c| R + 2**23) >> 24``  ``quantize_int``
``zigzag``     :class:`ZigzagBuffer`: double-buffered block, scan order, EOB position  ``zigzag``
``entropy``    :class:`RunLengthCoder`, :class:`HuffmanCoder` (loadable tables)  ``run_length_symbols``,
                                                                                  ``huffman_encode``
``bitpacker``  :class:`BitPacker`: MSB-first packing, 0xFF stuffing, 1-bit padding  ``BitWriter``
``encoder``    :class:`Encoder`: the top (sample stream in, byte stream out)     ``encode_scan``/``encode_payload``
``host``       pure Python: table images and sample streams for the RTL (what the host/driver computes)
=============  ================================================================  ==========================
"""
