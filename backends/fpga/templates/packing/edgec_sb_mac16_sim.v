// A simulation model of the iCE40 SB_MAC16 in the one configuration edgec_dual8x8_mac uses,
// so that a generated design simulates from its own sources (iverilog, Verilator) without
// the vendor or yosys cell library. Synthesis never sees it: yosys' read_verilog (and every
// synthesis tool) defines SYNTHESIS, and the primitive is then the real cell.
//
// Configuration (checked at time zero; anything else stops the simulation): MODE_8x8 with
// registered A/B inputs (A_REG, B_REG), registered 8x8 products (TOP/BOT_8x8_MULT_REG),
// unregistered C/D, each 16-bit accumulator register loading its product plus C (top) / D
// (bottom), no carry in, outputs from the accumulator registers (OUTPUT_SELECT 1). A and B
// bytes are sign-extended when A_SIGNED / B_SIGNED, else zero-extended. CE enables every
// register. The HOLD, reset, load and add/subtract inputs are not modelled (the unit ties
// them low); the carry and sign-extension outputs are tied low (the unit leaves them open).
// yosys' own model (<yosys datdir>/ice40/cells_sim.v) gives the same O on the same inputs:
// tests/test_fpga_packed_rtl.py runs the unit's exhaustive vectors through both.
`ifndef SYNTHESIS
/* verilator lint_off DECLFILENAME */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNUSEDPARAM */
// The model carries the primitive's name (to stand in for it), not its file's; the unmodelled
// inputs and the configuration parameters are the primitive's interface.
module SB_MAC16 #(
    parameter [0:0] NEG_TRIGGER = 1'b0,
    parameter [0:0] C_REG = 1'b0,
    parameter [0:0] A_REG = 1'b0,
    parameter [0:0] B_REG = 1'b0,
    parameter [0:0] D_REG = 1'b0,
    parameter [0:0] TOP_8x8_MULT_REG = 1'b0,
    parameter [0:0] BOT_8x8_MULT_REG = 1'b0,
    parameter [0:0] PIPELINE_16x16_MULT_REG1 = 1'b0,
    parameter [0:0] PIPELINE_16x16_MULT_REG2 = 1'b0,
    parameter [1:0] TOPOUTPUT_SELECT = 2'd0,
    parameter [1:0] TOPADDSUB_LOWERINPUT = 2'd0,
    parameter [0:0] TOPADDSUB_UPPERINPUT = 1'b0,
    parameter [1:0] TOPADDSUB_CARRYSELECT = 2'd0,
    parameter [1:0] BOTOUTPUT_SELECT = 2'd0,
    parameter [1:0] BOTADDSUB_LOWERINPUT = 2'd0,
    parameter [0:0] BOTADDSUB_UPPERINPUT = 1'b0,
    parameter [1:0] BOTADDSUB_CARRYSELECT = 2'd0,
    parameter [0:0] MODE_8x8 = 1'b0,
    parameter [0:0] A_SIGNED = 1'b0,
    parameter [0:0] B_SIGNED = 1'b0
) (
    input wire CLK,
    input wire CE,
    input wire [15:0] C,
    input wire [15:0] A,
    input wire [15:0] B,
    input wire [15:0] D,
    input wire AHOLD,
    input wire BHOLD,
    input wire CHOLD,
    input wire DHOLD,
    input wire IRSTTOP,
    input wire IRSTBOT,
    input wire ORSTTOP,
    input wire ORSTBOT,
    input wire OLOADTOP,
    input wire OLOADBOT,
    input wire ADDSUBTOP,
    input wire ADDSUBBOT,
    input wire OHOLDTOP,
    input wire OHOLDBOT,
    input wire CI,
    input wire ACCUMCI,
    input wire SIGNEXTIN,
    output wire [31:0] O,
    output wire CO,
    output wire ACCUMCO,
    output wire SIGNEXTOUT
);
    initial begin
        if (!(MODE_8x8 && A_REG && B_REG && !C_REG && !D_REG && TOP_8x8_MULT_REG && BOT_8x8_MULT_REG
              && !NEG_TRIGGER && TOPOUTPUT_SELECT == 2'd1 && BOTOUTPUT_SELECT == 2'd1
              && TOPADDSUB_LOWERINPUT == 2'd1 && BOTADDSUB_LOWERINPUT == 2'd1
              && TOPADDSUB_UPPERINPUT && BOTADDSUB_UPPERINPUT
              && TOPADDSUB_CARRYSELECT == 2'd0 && BOTADDSUB_CARRYSELECT == 2'd0)) begin
            $display("edgec_sb_mac16_sim: SB_MAC16 configuration not modelled (%m)");
            $finish;
        end
    end

    reg [15:0] a_r;
    reg [15:0] b_r;
    reg [15:0] top_product;
    reg [15:0] bot_product;
    reg [15:0] top_acc;
    reg [15:0] bot_acc;
    wire [15:0] a_hi = {{8{A_SIGNED && a_r[15]}}, a_r[15:8]};
    wire [15:0] a_lo = {{8{A_SIGNED && a_r[7]}}, a_r[7:0]};
    wire [15:0] b_hi = {{8{B_SIGNED && b_r[15]}}, b_r[15:8]};
    wire [15:0] b_lo = {{8{B_SIGNED && b_r[7]}}, b_r[7:0]};

    always @(posedge CLK) begin
        if (CE) begin
            a_r <= A;
            b_r <= B;
            top_product <= a_hi * b_hi;
            bot_product <= a_lo * b_lo;
            top_acc <= top_product + C;
            bot_acc <= bot_product + D;
        end
    end

    assign O = {top_acc, bot_acc};
    assign CO = 1'b0;
    assign ACCUMCO = 1'b0;
    assign SIGNEXTOUT = 1'b0;
endmodule
/* verilator lint_on UNUSEDPARAM */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on DECLFILENAME */
`endif
