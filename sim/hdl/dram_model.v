// Simulation-only DRAM model for the engine's request/response port (not synthesisable).
//
// Element-addressed (16-bit words); a beat carries up to BEAT words (the engine's lane count, 12 by
// default; CW: the width of the request's word count). Alignment and banks are not
// modelled: what matters for the engine is bandwidth and latency, both set at run time:
//   +DRAM_IMAGE=<hex file>    initial contents ($readmemh, one 16-bit word per line)
//   +DRAM_DUMP=<hex file>     written ($writememh) when `dump` rises, words 0 .. DRAM_DUMP_WORDS-1
//   +DRAM_DUMP_WORDS=<n>
//   +DRAM_LATENCY=<cycles>    read latency from request to response (default 20)
//   +DRAM_BPC16=<n>           bandwidth in 1/16 bytes per cycle (default 256 = 16 bytes/cycle)
//   +DRAM_GAP=<n>             probability (per 65536) of refusing a request in a cycle (default 0)
//   +DRAM_JITTER=<cycles>     extra random read latency 0..n (default 0; responses stay in order)
//   +DRAM_SEED=<n>
// A request of `count` words costs 2*count bytes of bandwidth (token bucket, at most one beat ahead).
module dram_model #(parameter AW = 26, parameter QD = 512, parameter BEAT = 12, parameter CW = 4) (
    input clk,
    input rst,
    input req_valid,
    output req_ready,
    input [31:0] req_addr,
    input req_write,
    input [CW-1:0] req_count,
    input [16*BEAT-1:0] req_wdata,
    output resp_valid,
    input resp_ready,
    output [16*BEAT-1:0] resp_rdata,
    input dump
);
    reg [15:0] mem [0:(1<<AW)-1];
    reg [8*512-1:0] image_file;
    reg [8*512-1:0] dump_file;
    integer dump_words, latency, bpc16, gap, jitter, seed;
    reg [31:0] rnd;
    reg [63:0] now;
    integer tokens;              // in 1/16 bytes
    reg [16*BEAT-1:0] q_data [0:QD-1];
    reg [63:0] q_time [0:QD-1];
    reg [15:0] q_head, q_tail;
    reg [63:0] last_time;
    reg refuse;
    reg dump_d;
    integer i;

    initial begin
        if (!$value$plusargs("DRAM_LATENCY=%d", latency)) latency = 20;
        if (!$value$plusargs("DRAM_BPC16=%d", bpc16)) bpc16 = 256;
        if (!$value$plusargs("DRAM_GAP=%d", gap)) gap = 0;
        if (!$value$plusargs("DRAM_JITTER=%d", jitter)) jitter = 0;
        if (!$value$plusargs("DRAM_SEED=%d", seed)) seed = 1;
        if (!$value$plusargs("DRAM_DUMP_WORDS=%d", dump_words)) dump_words = 0;
        if ($value$plusargs("DRAM_IMAGE=%s", image_file)) $readmemh(image_file, mem);
        rnd = seed | 1;
        now = 0; tokens = 0; q_head = 0; q_tail = 0; last_time = 0; refuse = 0; dump_d = 0;
    end

    wire [15:0] q_count = q_tail - q_head;
    wire cost_ok = tokens >= 32 * req_count;   // 2 bytes per word, in 1/16 bytes
    assign req_ready = !rst && cost_ok && !refuse && (q_count < QD - 1);
    assign resp_valid = (q_count != 0) && (q_time[q_head[8:0]] <= now);
    assign resp_rdata = q_data[q_head[8:0]];

    reg [16*BEAT-1:0] rd;
    reg [63:0] t;
    always @(posedge clk) begin
        now <= now + 1;
        rnd = rnd ^ (rnd << 13); rnd = rnd ^ (rnd >> 17); rnd = rnd ^ (rnd << 5);
        refuse <= (gap != 0) && ((rnd & 32'hffff) < gap);
        if (req_valid && req_ready) begin
            tokens <= ((tokens - 32 * req_count + bpc16) > 64 * BEAT) ? 64 * BEAT : (tokens - 32 * req_count + bpc16);
            if (req_write) begin
                for (i = 0; i < BEAT; i = i + 1)
                    if (i < req_count) mem[req_addr + i] <= req_wdata[16*i +: 16];
            end else begin
                for (i = 0; i < BEAT; i = i + 1) rd[16*i +: 16] = mem[req_addr + i];
                t = now + latency + ((jitter != 0) ? ((rnd >> 16) % (jitter + 1)) : 0);
                if (t < last_time) t = last_time;   // in order
                last_time <= t;
                q_data[q_tail[8:0]] <= rd;
                q_time[q_tail[8:0]] <= t;
                q_tail <= q_tail + 1;
            end
        end else begin
            tokens <= ((tokens + bpc16) > 64 * BEAT) ? 64 * BEAT : (tokens + bpc16);
        end
        if (resp_valid && resp_ready) q_head <= q_head + 1;
        dump_d <= dump;
        if (dump && !dump_d && dump_words > 0 && $value$plusargs("DRAM_DUMP=%s", dump_file))
            $writememh(dump_file, mem, 0, dump_words - 1);
    end
endmodule
