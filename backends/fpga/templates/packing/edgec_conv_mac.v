// Convolution packed MAC (HiKonv/BSEG kind): N weights times M activations on one
// DSP48E2/DSP48E1 per cycle (edgec.backends.fpga.lanes, scheme "conv"; packed_datapath is its
// bit-exact model, and each step below mirrors one of its functions).
//
// en is the clock enable of every register (the DSP's and the fabric's): a cycle with en low
// does not count, nothing moves, and the outputs hold (out_valid stays high until a cycle with
// en high, at which a consumer takes seg). In what follows "cycle" means a cycle with en high.
// Per cycle with in_valid: weights w_i = w[i*W +: W] (i < N) and activations x_j = x[j*A +: A]
// (j < M). Segment k (k < LANES = N + M - 1) sums w_i * x_j over i + j = k. in_first starts a
// new accumulation, in_last ends it; out_valid pulses exactly LATENCY = 4 cycles after the
// in_last cycle, with seg[k*ACC +: ACC] segment k's exact sum over the accumulation (signed).
// Cycles without in_valid are bubbles (a zero product) and may fall anywhere.
//
// Datapath (weight_ports, preadd, input_port, accumulate): the pre-adder forms
// sum_i w_i * 2**(i*L) from D (each weight's low bits at i*L) and A (its sign bit at
// i*L + W - 1); the fabric forms B = sum_j x_j * 2**(j*L) the same way, as the difference of
// two words of non-overlapping fields (edgec_packed_fields both; L >= A, which conv_packed_rtl
// checks); the DSP accumulates P = sum_k S_k * 2**(k*L). Canaries (canaries,
// edgec_packed_canary): segment k's sum of the operands' low CB bits' products, mod 2**CB
// (LUTs). Carry counters and read-out (carry_step, extract): edgec_packed_recover, shared with
// edgec_sdv_mac.
module edgec_conv_mac #(
    parameter integer N = 4,
    parameter integer M = 3,
    parameter integer W = 4,
    parameter integer A = 4,
    parameter integer W_SIGNED = 1,
    parameter integer X_SIGNED = 1,
    parameter integer L = 6,
    parameter integer CB = 3,
    parameter integer SB = 9,
    parameter integer ACC = 15,
    // CARRY_LOW[(k-1)*8 +: 8]: boundary k's window low end, 8-bit two's complement.
    parameter [8*(N+M-2)-1:0] CARRY_LOW = {(N + M - 2){8'hff}},
    parameter integer AD_BITS = 27
) (
    input wire clk,
    input wire rst,
    input wire en,
    input wire in_valid,
    input wire in_first,
    input wire in_last,
    input wire [N*W-1:0] w,
    input wire [M*A-1:0] x,
    output wire out_valid,
    output wire [(N+M-1)*ACC-1:0] seg
);
    localparam integer LANES = N + M - 1;
    localparam integer B_BITS = 18;
    localparam integer P_BITS = 48;

    // Operands: bubbles multiply by zero.
    wire [M*A-1:0] x_g = in_valid ? x : {(M * A){1'b0}};
    wire [AD_BITS-1:0] d_word;
    wire [AD_BITS-1:0] a_word;
    edgec_packed_fields #(.COUNT(N), .BITS(W), .SIGNED(W_SIGNED), .STRIDE(L), .WIDTH(AD_BITS)) weights (
        .values(w), .low(d_word), .sign(a_word));
    // input_port: sum_j x_j * 2**(j*L), the sign bits subtracted (18-bit wrap, exact: the word fits).
    wire [B_BITS-1:0] bd_word;
    wire [B_BITS-1:0] ba_word;
    edgec_packed_fields #(.COUNT(M), .BITS(A), .SIGNED(X_SIGNED), .STRIDE(L), .WIDTH(B_BITS)) inputs (
        .values(x_g), .low(bd_word), .sign(ba_word));
    wire [B_BITS-1:0] b_word = bd_word - ba_word;
    wire [(LANES-1)*CB-1:0] canary;  // segments 1..LANES-1 (segment 0 needs none)
    edgec_packed_canary #(.N(N), .M(M), .W(W), .A(A), .W_SIGNED(W_SIGNED), .X_SIGNED(X_SIGNED), .CB(CB))
        canaries (.w(w), .x(x_g), .canary(canary));

    wire [P_BITS-1:0] p;
    edgec_dsp48 #(.AD_BITS(AD_BITS), .B_BITS(B_BITS), .P_BITS(P_BITS)) dsp (
        .clk(clk), .en(en), .first(in_valid & in_first), .d(d_word), .a(a_word), .b(b_word), .p(p));
    edgec_packed_recover #(.LANES(LANES), .L(L), .CB(CB), .SB(SB), .ACC(ACC), .CARRY_LOW(CARRY_LOW)) recover (
        .clk(clk), .rst(rst), .en(en), .first(in_valid & in_first), .last(in_valid & in_last), .canary(canary),
        .p(p), .out_valid(out_valid), .sums(seg));
endmodule
