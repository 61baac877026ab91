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
// (its sign bit); the DSP accumulates P = sum_l S_l * 2**(l*L). Lane boundaries k >= 1 keep
// a SB-bit carry counter c_k (floor of the lower lanes' sum over 2**(k*L)), moved each cycle
// by delta = (F - F_prev - canary_k) mod 2**CB brought into [CARRY_LOW_k, CARRY_LOW_k + 2**CB),
// F the low CB bits of P's lane-k field and canary_k lane k's product mod 2**CB (LUTs).
// Read-out: S_k = c_{k+1} * 2**L + field_k(P) - c_k, top lane (P >>> off_top) - c_top.
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
    output reg out_valid,
    output reg [LANES*ACC-1:0] acc
);
    localparam integer B_BITS = 18;
    localparam integer P_BITS = 48;
    localparam integer LOW_BITS = W_SIGNED != 0 ? W - 1 : W;
    localparam integer TOP = (LANES - 1) * L;
    localparam integer HIGH_BITS = P_BITS - TOP;

    // Operands: bubbles multiply by zero.
    wire [A-1:0] x_g = in_valid ? x : {A{1'b0}};
    wire x_sign = X_SIGNED != 0 && x_g[A-1];
    wire [B_BITS-1:0] b_word = {{(B_BITS - A){x_sign}}, x_g};
    // The canary operands: each value's low CB bits as a two's-complement number.
    wire [LANES*CB-1:0] w_low;
    wire [CB-1:0] x_low;
    genvar n;
    generate
        for (n = 0; n < LANES; n = n + 1) begin : canary_operand
            if (W >= CB) begin : cut
                assign w_low[n*CB +: CB] = w[n*W +: CB];
            end else begin : extend
                assign w_low[n*CB +: CB] = {{(CB - W){W_SIGNED != 0 && w[n*W + W - 1]}}, w[n*W +: W]};
            end
        end
        if (A >= CB) begin : x_cut
            assign x_low = x_g[CB-1:0];
        end else begin : x_extend
            assign x_low = {{(CB - A){x_sign}}, x_g};
        end
    endgenerate
    reg [AD_BITS-1:0] d_word;
    reg [AD_BITS-1:0] a_word;
    reg [(LANES-1)*CB-1:0] canary;  // lanes 1..LANES-1 (lane 0 needs none)
    integer i;
    always @(*) begin
        d_word = {AD_BITS{1'b0}};
        a_word = {AD_BITS{1'b0}};
        for (i = 0; i < LANES; i = i + 1) begin
            d_word[i*L +: LOW_BITS] = w[i*W +: LOW_BITS];
            if (W_SIGNED != 0) a_word[i*L + W - 1] = w[i*W + W - 1];
        end
        for (i = 1; i < LANES; i = i + 1) canary[(i-1)*CB +: CB] = w_low[i*CB +: CB] * x_low;
    end

    wire [P_BITS-1:0] p;
    edgec_dsp48 #(.AD_BITS(AD_BITS), .B_BITS(B_BITS), .P_BITS(P_BITS)) dsp (
        .clk(clk), .en(en), .first(in_valid & in_first), .d(d_word), .a(a_word), .b(b_word), .p(p));

    // Control and canaries, delayed to meet P (3 cycles).
    reg [2:0] first_d;
    reg [2:0] last_d;
    reg [(LANES-1)*CB-1:0] canary_d [0:2];
    always @(posedge clk) begin
        if (en) begin
            first_d <= {first_d[1:0], in_valid & in_first};
            canary_d[0] <= canary;
            canary_d[1] <= canary_d[0];
            canary_d[2] <= canary_d[1];
        end
        if (rst) last_d <= 3'b000;
        else if (en) last_d <= {last_d[1:0], in_valid & in_last};
    end
    wire first3 = first_d[2];
    wire [(LANES-1)*CB-1:0] canary3 = canary_d[2];

    // Carry counters (boundary k in slot k; slot 0 is the constant zero below lane 0) and the
    // read-out. The sums are computed modulo 2**WD and cut to their needed widths: every
    // true value fits its slot, so two's-complement wrap in the wide temporaries is exact.
    localparam integer WD = P_BITS + ACC + SB + L;
    wire [LANES*SB-1:0] carry_next;
    wire [LANES*ACC-1:0] sums;
    reg [(LANES-1)*CB-1:0] f_prev;
    reg [(LANES-1)*SB-1:0] carry;
    assign carry_next[SB-1:0] = {SB{1'b0}};
    genvar g;
    generate
        for (g = 1; g < LANES; g = g + 1) begin : boundary
            wire [7:0] low = CARRY_LOW[(g-1)*8 +: 8];
            wire [CB-1:0] f_before = first3 ? {CB{1'b0}} : f_prev[(g-1)*CB +: CB];
            wire [CB-1:0] residue = p[g*L +: CB] - f_before - canary3[(g-1)*CB +: CB] - low[CB-1:0];
            wire [SB-1:0] start = first3 ? {SB{1'b0}} : carry[(g-1)*SB +: SB];
            /* verilator lint_off UNUSEDSIGNAL */
            // Only the low SB bits of the counter's wide sum are kept (modular arithmetic).
            wire [WD-1:0] next = {{(WD - SB){start[SB-1]}}, start} + {{(WD - 8){low[7]}}, low}
                               + {{(WD - CB){1'b0}}, residue};
            /* verilator lint_on UNUSEDSIGNAL */
            assign carry_next[g*SB +: SB] = next[SB-1:0];
        end
        for (g = 0; g < LANES; g = g + 1) begin : lane
            wire [SB-1:0] c_lo = carry_next[g*SB +: SB];
            wire [WD-1:0] c_lo_w = {{(WD - SB){c_lo[SB-1]}}, c_lo};
            /* verilator lint_off UNUSEDSIGNAL */
            // Only the low ACC bits of the lane's wide sum are kept (modular arithmetic).
            wire [WD-1:0] sum;
            /* verilator lint_on UNUSEDSIGNAL */
            if (g < LANES - 1) begin : inner
                wire [SB-1:0] c_hi = carry_next[(g+1)*SB +: SB];
                wire [WD-1:0] c_hi_w = {{(WD - SB - L){c_hi[SB-1]}}, c_hi, {L{1'b0}}};
                assign sum = c_hi_w + {{(WD - L){1'b0}}, p[g*L +: L]} - c_lo_w;
            end else begin : top
                assign sum = {{(WD - HIGH_BITS){p[P_BITS-1]}}, p[P_BITS-1:TOP]} - c_lo_w;
            end
            assign sums[g*ACC +: ACC] = sum[ACC-1:0];
        end
    endgenerate

    integer k;
    always @(posedge clk) begin
        if (en) begin
            for (k = 1; k < LANES; k = k + 1) f_prev[(k-1)*CB +: CB] <= p[k*L +: CB];
            carry <= carry_next[LANES*SB-1:SB];
            if (last_d[2]) acc <= sums;
        end
        if (rst) out_valid <= 1'b0;
        else if (en) out_valid <= last_d[2];
    end
endmodule
