// Dual 8x8 MAC on one iCE40 SB_MAC16 (edgec.backends.fpga.lanes, scheme "dual8x8";
// packed_datapath.run_dual8x8 is its bit-exact model): two output channels sharing one
// activation, lane 0 on the bottom 8x8 multiplier, lane 1 on the top one.
//
// Interface and timing as edgec_sdv_mac with LANES = 2: en is the clock enable of every
// register (the SB_MAC16's CE and the fabric's), out_valid pulses exactly LATENCY = 4 cycles
// (with en high) after the in_last cycle, acc[l*ACC +: ACC] lane l's exact sum; the pipeline
// and the handshake are edgec_packed_handshake's, as in the DSP48 units. The recovery differs
// from theirs (edgec_packed_recover): each lane has its own 16-bit accumulator, so there are
// no shared fields, no canaries, and a wrap counter per lane instead of carry counters.
//
// SB_MAC16 in MODE_8x8: registered A/B inputs and products, each 16-bit accumulator adding
// its product to C (top) / D (bottom), which the fabric feeds back from O, or zero on a
// first cycle. Each accumulator wraps at 16 bits; a SB-bit wrap counter per lane, moved by
// the carry out of the 16-bit add (from the MSBs) minus the product's sign, extends it:
// sum = counter * 2**16 + O.
// Synthesis: yosys 0.23's ice40_dsp pass (synth_ice40 -dsp) rewrites every SB_MAC16 cell as a
// 16x16 multiplier (MODE_8x8, the registers and the clock are lost): flow_ice40.synthesize
// hides this unit's cell from it (or run synth_ice40 without -dsp).
module edgec_dual8x8_mac #(
    parameter integer W = 4,
    parameter integer A = 4,
    parameter integer W_SIGNED = 1,
    parameter integer X_SIGNED = 0,
    parameter integer SB = 1,
    parameter integer ACC = 14
) (
    input wire clk,
    input wire rst,
    input wire en,
    input wire in_valid,
    input wire in_first,
    input wire in_last,
    input wire [2*W-1:0] w,
    input wire [A-1:0] x,
    output wire out_valid,
    output wire [2*ACC-1:0] acc
);
    wire [A-1:0] x_g = in_valid ? x : {A{1'b0}};
    wire x_sign = X_SIGNED != 0 && x_g[A-1];
    wire [7:0] x8 = {{(8 - A){x_sign}}, x_g};
    wire [7:0] w0 = {{(8 - W){W_SIGNED != 0 && w[W-1]}}, w[W-1:0]};
    wire [7:0] w1 = {{(8 - W){W_SIGNED != 0 && w[2*W-1]}}, w[2*W-1:W]};

    // A product is negative when its operands' signs differ and neither is zero.
    wire x_neg = x_sign;
    wire x_zero = x_g == {A{1'b0}};
    wire [1:0] negative = {(W_SIGNED != 0 && w[2*W-1]) != x_neg && w1 != 8'd0 && !x_zero,
                           (W_SIGNED != 0 && w[W-1]) != x_neg && w0 != 8'd0 && !x_zero};

    // The SB_MAC16's input, product and accumulator registers: 3 cycles, as a DSP48's.
    wire first2;
    wire first3;
    wire [1:0] negative3;
    wire [2*ACC-1:0] sums;
    edgec_packed_handshake #(.DATA_BITS(2), .OUT_BITS(2 * ACC)) handshake (
        .clk(clk), .rst(rst), .en(en), .first(in_valid & in_first), .last(in_valid & in_last), .data(negative),
        .result(sums), .first2(first2), .first3(first3), .data3(negative3), .out_valid(out_valid), .out(acc));

    wire [31:0] o;
    wire [15:0] feedback_top = first2 ? 16'd0 : o[31:16];
    wire [15:0] feedback_bot = first2 ? 16'd0 : o[15:0];
    /* verilator lint_off PINCONNECTEMPTY */
    // The carry and sign-extension outputs are not used: the fabric tracks the wraps.
    SB_MAC16 #(
        .A_REG(1'b1), .B_REG(1'b1), .C_REG(1'b0), .D_REG(1'b0),
        .TOP_8x8_MULT_REG(1'b1), .BOT_8x8_MULT_REG(1'b1),
        .PIPELINE_16x16_MULT_REG1(1'b0), .PIPELINE_16x16_MULT_REG2(1'b0),
        .TOPOUTPUT_SELECT(2'd1), .TOPADDSUB_LOWERINPUT(2'd1), .TOPADDSUB_UPPERINPUT(1'b1),
        .TOPADDSUB_CARRYSELECT(2'd0),
        .BOTOUTPUT_SELECT(2'd1), .BOTADDSUB_LOWERINPUT(2'd1), .BOTADDSUB_UPPERINPUT(1'b1),
        .BOTADDSUB_CARRYSELECT(2'd0),
        .MODE_8x8(1'b1), .A_SIGNED(W_SIGNED != 0), .B_SIGNED(X_SIGNED != 0)
    ) mac (
        .CLK(clk), .CE(en), .C(feedback_top), .A({w1, w0}), .B({x8, x8}), .D(feedback_bot),
        .AHOLD(1'b0), .BHOLD(1'b0), .CHOLD(1'b0), .DHOLD(1'b0),
        .IRSTTOP(1'b0), .IRSTBOT(1'b0), .ORSTTOP(1'b0), .ORSTBOT(1'b0),
        .OLOADTOP(1'b0), .OLOADBOT(1'b0), .ADDSUBTOP(1'b0), .ADDSUBBOT(1'b0),
        .OHOLDTOP(1'b0), .OHOLDBOT(1'b0), .CI(1'b0), .ACCUMCI(1'b0), .SIGNEXTIN(1'b0),
        .O(o), .CO(), .ACCUMCO(), .SIGNEXTOUT());
    /* verilator lint_on PINCONNECTEMPTY */

    // Wrap counters: msb_prev holds each accumulator's MSB before this cycle's add.
    reg [1:0] msb_prev;
    reg [2*SB-1:0] high;
    wire [2*SB-1:0] high_next;
    genvar g;
    generate
        for (g = 0; g < 2; g = g + 1) begin : lane
            wire msb_before = !first3 && msb_prev[g];
            wire msb_after = o[g*16 + 15];
            wire neg = negative3[g];
            wire carry = (msb_before && neg) || ((msb_before || neg) && !msb_after);
            wire [SB-1:0] start = first3 ? {SB{1'b0}} : high[g*SB +: SB];
            assign high_next[g*SB +: SB] = start + {{(SB - 1){1'b0}}, carry} - {{(SB - 1){1'b0}}, neg};
            /* verilator lint_off UNUSEDSIGNAL */
            // Only the low ACC bits of the extended sum are kept (modular arithmetic).
            wire [ACC+SB+15:0] sum = {{ACC{high_next[g*SB + SB - 1]}}, high_next[g*SB +: SB], o[g*16 +: 16]};
            /* verilator lint_on UNUSEDSIGNAL */
            assign sums[g*ACC +: ACC] = sum[ACC-1:0];
        end
    endgenerate

    always @(posedge clk) begin
        if (en) begin
            msb_prev <= {o[31], o[15]};
            high <= high_next;
        end
    end
endmodule
