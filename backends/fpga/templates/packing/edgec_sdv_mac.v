// SDV packed MAC: LANES output channels sharing one activation on one DSP48E2/DSP48E1
// (edgec.backends.fpga.lanes, scheme "sdv"; packed_datapath is its bit-exact model).
//
// en is the clock enable of every register (the DSP's and the fabric's): a cycle with en low
// does not count, nothing moves, and the outputs hold (out_valid stays high until a cycle with
// en high, at which a consumer takes acc). In what follows "cycle" means a cycle with en high.
// Per cycle with in_valid: lane l multiplies w[l*W +: W] by x. in_first starts a new
// accumulation, in_last ends it; out_valid pulses exactly LATENCY = 4 cycles after the
// in_last cycle, with acc[l*ACC +: ACC] lane l's exact sum (signed). Cycles without
// in_valid are bubbles (a zero product) and may fall anywhere.
//
// Datapath: the pre-adder forms sum_l w_l * 2**(l*L) from D (each weight's low bits) and A
// (its sign bit), edgec_packed_fields; B is x, sign-extended (one activation: no fields, so
// no constraint between L and A). The DSP accumulates P = sum_l S_l * 2**(l*L); lane l's
// canary is w_l * x mod 2**CB (edgec_packed_canary with one activation, M = 1), and
// edgec_packed_recover keeps the carry counters and reads the exact lane sums out of P (it is
// edgec_conv_mac's recovery: lane l is its segment l).
module edgec_sdv_mac #(
    parameter integer LANES = 4,
    parameter integer W = 4,
    parameter integer A = 4,
    parameter integer W_SIGNED = 1,
    parameter integer X_SIGNED = 0,
    parameter integer L = 7,
    parameter integer CB = 2,
    parameter integer SB = 7,
    parameter integer ACC = 14,
    // CARRY_LOW[(k-1)*8 +: 8]: boundary k's window low end, 8-bit two's complement.
    parameter [8*(LANES-1)-1:0] CARRY_LOW = {(LANES - 1){8'hff}},
    parameter integer AD_BITS = 27
) (
    input wire clk,
    input wire rst,
    input wire en,
    input wire in_valid,
    input wire in_first,
    input wire in_last,
    input wire [LANES*W-1:0] w,
    input wire [A-1:0] x,
    output wire out_valid,
    output wire [LANES*ACC-1:0] acc
);
    localparam integer B_BITS = 18;
    localparam integer P_BITS = 48;

    // Operands: bubbles multiply by zero.
    wire [A-1:0] x_g = in_valid ? x : {A{1'b0}};
    wire [B_BITS-1:0] b_word = {{(B_BITS - A){X_SIGNED != 0 && x_g[A-1]}}, x_g};
    wire [AD_BITS-1:0] d_word;
    wire [AD_BITS-1:0] a_word;
    edgec_packed_fields #(.COUNT(LANES), .BITS(W), .SIGNED(W_SIGNED), .STRIDE(L), .WIDTH(AD_BITS)) weights (
        .values(w), .low(d_word), .sign(a_word));
    wire [(LANES-1)*CB-1:0] canary;  // lanes 1..LANES-1 (lane 0 needs none)
    edgec_packed_canary #(.N(LANES), .M(1), .W(W), .A(A), .W_SIGNED(W_SIGNED), .X_SIGNED(X_SIGNED), .CB(CB))
        canaries (.w(w), .x(x_g), .canary(canary));

    wire [P_BITS-1:0] p;
    edgec_dsp48 #(.AD_BITS(AD_BITS), .B_BITS(B_BITS), .P_BITS(P_BITS)) dsp (
        .clk(clk), .en(en), .first(in_valid & in_first), .d(d_word), .a(a_word), .b(b_word), .p(p));
    edgec_packed_recover #(.LANES(LANES), .L(L), .CB(CB), .SB(SB), .ACC(ACC), .CARRY_LOW(CARRY_LOW)) recover (
        .clk(clk), .rst(rst), .en(en), .first(in_valid & in_first), .last(in_valid & in_last), .canary(canary),
        .p(p), .out_valid(out_valid), .sums(acc));
endmodule
