// Exact recovery of the DSP48 packed units' segment sums (edgec.backends.fpga.lanes;
// packed_datapath.carry_step and extract are its bit-exact model), shared by edgec_sdv_mac
// (lane l = segment l) and edgec_conv_mac. LANES segments of stride L accumulate in the
// 48-bit P = sum_k S_k * 2**(k*L) of an edgec_dsp48 that takes the same operands.
//
// first, last and en as in edgec_packed_handshake (which delays them and canary to meet P and
// registers the sums: out_valid pulses LATENCY = 4 cycles after the last cycle, sums[k*ACC +:
// ACC] segment k's exact signed sum). canary[(k-1)*CB +: CB] is segment k's canary of this
// cycle's operands (edgec_packed_canary). Carry counters: boundary k >= 1 keeps an SB-bit
// counter c_k, moved each cycle by delta = (F - F_prev - canary_k) mod 2**CB brought into
// [CARRY_LOW_k, CARRY_LOW_k + 2**CB), F the low CB bits of P's field k. Read-out:
// S_k = c_{k+1} * 2**L + field_k(P) - c_k, top segment (P >>> (LANES-1)*L) - c_top.
module edgec_packed_recover #(
    parameter integer LANES = 4,
    parameter integer L = 7,
    parameter integer CB = 2,
    parameter integer SB = 7,
    parameter integer ACC = 14,
    // CARRY_LOW[(k-1)*8 +: 8]: boundary k's window low end, 8-bit two's complement.
    parameter [8*(LANES-1)-1:0] CARRY_LOW = {(LANES - 1){8'hff}}
) (
    input wire clk,
    input wire rst,
    input wire en,
    input wire first,
    input wire last,
    input wire [(LANES-1)*CB-1:0] canary,
    input wire [47:0] p,
    output wire out_valid,
    output wire [LANES*ACC-1:0] sums
);
    localparam integer P_BITS = 48;
    localparam integer TOP = (LANES - 1) * L;
    localparam integer HIGH_BITS = P_BITS - TOP;

    wire first3;
    wire [(LANES-1)*CB-1:0] canary3;
    wire [LANES*ACC-1:0] sums_now;
    /* verilator lint_off PINCONNECTEMPTY */
    // first2 is for cells that add their product to a fed-back accumulator; the DSP48 does it.
    edgec_packed_handshake #(.DATA_BITS((LANES - 1) * CB), .OUT_BITS(LANES * ACC)) handshake (
        .clk(clk), .rst(rst), .en(en), .first(first), .last(last), .data(canary), .result(sums_now),
        .first2(), .first3(first3), .data3(canary3), .out_valid(out_valid), .out(sums));
    /* verilator lint_on PINCONNECTEMPTY */

    // Carry counters (boundary k in slot k; slot 0 is the constant zero below segment 0) and
    // the read-out. The sums are computed modulo 2**WD and cut to their needed widths: every
    // true value fits its slot, so two's-complement wrap in the temporaries is exact. WD exceeds
    // every operand's width (so each sign extension below has at least one bit).
    localparam integer WD_ACC = ACC > HIGH_BITS ? ACC : HIGH_BITS;
    localparam integer WD_SB = SB + L > 8 ? SB + L : 8;
    localparam integer WD = 1 + (WD_ACC > WD_SB ? WD_ACC : WD_SB);
    wire [LANES*SB-1:0] carry_next;
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
            assign sums_now[g*ACC +: ACC] = sum[ACC-1:0];
        end
    endgenerate

    integer k;
    always @(posedge clk) begin
        if (en) begin
            for (k = 1; k < LANES; k = k + 1) f_prev[(k-1)*CB +: CB] <= p[k*L +: CB];
            carry <= carry_next[LANES*SB-1:SB];
        end
    end
endmodule
