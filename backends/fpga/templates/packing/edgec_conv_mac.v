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
// two words of non-overlapping fields (L >= A, which conv_packed_rtl checks); the DSP
// accumulates P = sum_k S_k * 2**(k*L). Canaries (canaries): segment k's sum of the operands'
// low CB bits' products, mod 2**CB (LUTs). Carry counters (carry_step): boundary k >= 1 keeps
// an SB-bit counter c_k, moved each cycle by delta = (F - F_prev - canary_k) mod 2**CB brought
// into [CARRY_LOW_k, CARRY_LOW_k + 2**CB), F the low CB bits of P's field k. Read-out
// (extract): S_k = c_{k+1} * 2**L + field_k(P) - c_k, top segment (P >>> off_top) - c_top.
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
    output reg out_valid,
    output reg [(N+M-1)*ACC-1:0] seg
);
    localparam integer LANES = N + M - 1;
    localparam integer B_BITS = 18;
    localparam integer P_BITS = 48;
    localparam integer W_LOW = W_SIGNED != 0 ? W - 1 : W;
    localparam integer X_LOW = X_SIGNED != 0 ? A - 1 : A;
    localparam integer TOP = (LANES - 1) * L;
    localparam integer HIGH_BITS = P_BITS - TOP;

    // Operands: bubbles multiply by zero.
    wire [M*A-1:0] x_g = in_valid ? x : {(M * A){1'b0}};
    // The canary operands: each value's low CB bits as a two's-complement number.
    wire [N*CB-1:0] w_low;
    wire [M*CB-1:0] x_low;
    genvar n;
    generate
        for (n = 0; n < N; n = n + 1) begin : w_canary
            if (W >= CB) begin : cut
                assign w_low[n*CB +: CB] = w[n*W +: CB];
            end else begin : extend
                assign w_low[n*CB +: CB] = {{(CB - W){W_SIGNED != 0 && w[n*W + W - 1]}}, w[n*W +: W]};
            end
        end
        for (n = 0; n < M; n = n + 1) begin : x_canary
            if (A >= CB) begin : cut
                assign x_low[n*CB +: CB] = x_g[n*A +: CB];
            end else begin : extend
                assign x_low[n*CB +: CB] = {{(CB - A){X_SIGNED != 0 && x_g[n*A + A - 1]}}, x_g[n*A +: A]};
            end
        end
    endgenerate
    // weight_ports and input_port's words, by wiring alone: D bit i*L + r is bit r of w_i
    // (r < W_LOW), A bit i*L + W - 1 the sign of w_i (signed weights); likewise for x_j at
    // j*L in BD and BA. Every other bit is zero.
    wire [AD_BITS-1:0] d_word;
    wire [AD_BITS-1:0] a_word;
    wire [B_BITS-1:0] bd_word;
    wire [B_BITS-1:0] ba_word;
    genvar b;
    generate
        for (b = 0; b < AD_BITS; b = b + 1) begin : ad_bit
            if (b / L < N && b % L < W_LOW) begin : low
                assign d_word[b] = w[(b / L) * W + b % L];
            end else begin : low_gap
                assign d_word[b] = 1'b0;
            end
            if (W_SIGNED != 0 && b >= W - 1 && (b - W + 1) % L == 0 && (b - W + 1) / L < N) begin : sign
                assign a_word[b] = w[((b - W + 1) / L) * W + W - 1];
            end else begin : sign_gap
                assign a_word[b] = 1'b0;
            end
        end
        for (b = 0; b < B_BITS; b = b + 1) begin : b_bit
            if (b / L < M && b % L < X_LOW) begin : low
                assign bd_word[b] = x_g[(b / L) * A + b % L];
            end else begin : low_gap
                assign bd_word[b] = 1'b0;
            end
            if (X_SIGNED != 0 && b >= A - 1 && (b - A + 1) % L == 0 && (b - A + 1) / L < M) begin : sign
                assign ba_word[b] = x_g[((b - A + 1) / L) * A + A - 1];
            end else begin : sign_gap
                assign ba_word[b] = 1'b0;
            end
        end
    endgenerate
    // canaries: segment s's products mod 2**CB, summed along a chain over the weight index.
    wire [(LANES-1)*CB-1:0] canary;  // segments 1..LANES-1 (segment 0 needs none)
    genvar s;
    generate
        for (s = 1; s < LANES; s = s + 1) begin : canary_segment
            for (n = 0; n < N; n = n + 1) begin : term
                wire [CB-1:0] earlier;
                wire [CB-1:0] partial;  // the products of weights 0..n
                if (n == 0) begin : head
                    assign earlier = {CB{1'b0}};
                end else begin : link
                    assign earlier = term[n-1].partial;
                end
                if (s - n >= 0 && s - n < M) begin : product
                    assign partial = earlier + w_low[n*CB +: CB] * x_low[(s-n)*CB +: CB];
                end else begin : pass
                    assign partial = earlier;
                end
            end
            assign canary[(s-1)*CB +: CB] = term[N-1].partial;
        end
    endgenerate
    // input_port: sum_j x_j * 2**(j*L), the sign bits subtracted (18-bit wrap, exact: the word fits).
    wire [B_BITS-1:0] b_word = bd_word - ba_word;

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

    // Carry counters (boundary k in slot k; slot 0 is the constant zero below segment 0) and
    // the read-out. The sums are computed modulo 2**WD and cut to their needed widths: every
    // true value fits its slot, so two's-complement wrap in the temporaries is exact. WD exceeds
    // every operand's width (so each sign extension below has at least one bit).
    localparam integer WD_ACC = ACC > HIGH_BITS ? ACC : HIGH_BITS;
    localparam integer WD_SB = SB + L > 8 ? SB + L : 8;
    localparam integer WD = 1 + (WD_ACC > WD_SB ? WD_ACC : WD_SB);
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
        for (g = 0; g < LANES; g = g + 1) begin : segment
            wire [SB-1:0] c_lo = carry_next[g*SB +: SB];
            wire [WD-1:0] c_lo_w = {{(WD - SB){c_lo[SB-1]}}, c_lo};
            /* verilator lint_off UNUSEDSIGNAL */
            // Only the low ACC bits of the segment's wide sum are kept (modular arithmetic).
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
            if (last_d[2]) seg <= sums;
        end
        if (rst) out_valid <= 1'b0;
        else if (en) out_valid <= last_d[2];
    end
endmodule

