// Behavioural model of the part of a Xilinx DSP48E2 (AD_BITS 27) or DSP48E1 (AD_BITS 25)
// that edgec's packed units use: registered D, A, B ports (DREG/AREG/BREG), the pre-adder
// D - A, the signed multiplier, a registered product (MREG) and the 48-bit P accumulator
// (PREG) that loads the product on `first` and adds it otherwise. `en` is the clock enable of
// every register (the primitive's CEA/CEB/CED/CEM/CEP tied together): nothing moves while it is low.
// Latency: operands presented at cycle t are in p after the clock edge ending cycle t + 2
// (counting only cycles with en high).
// Arithmetic wraps at each register's width, as the primitive's does. yosys synth_xilinx
// maps the multiplier with its adder and registers onto one DSP48E2/DSP48E1.
module edgec_dsp48 #(
    parameter integer AD_BITS = 27,
    parameter integer B_BITS = 18,
    parameter integer P_BITS = 48
) (
    input wire clk,
    input wire en,
    input wire first,
    input wire [AD_BITS-1:0] d,
    input wire [AD_BITS-1:0] a,
    input wire [B_BITS-1:0] b,
    output wire [P_BITS-1:0] p
);
    localparam integer M_BITS = AD_BITS + B_BITS;

    reg signed [AD_BITS-1:0] d_r;
    reg signed [AD_BITS-1:0] a_r;
    reg signed [B_BITS-1:0] b_r;
    reg first_r;
    reg first_m;
    reg signed [M_BITS-1:0] m_r;
    reg signed [P_BITS-1:0] p_r;

    wire signed [AD_BITS-1:0] ad = d_r - a_r;
    wire signed [P_BITS-1:0] m_ext = {{(P_BITS - M_BITS){m_r[M_BITS-1]}}, m_r};

    always @(posedge clk) begin
        if (en) begin
            d_r <= d;
            a_r <= a;
            b_r <= b;
            first_r <= first;
            m_r <= ad * b_r;
            first_m <= first_r;
            p_r <= first_m ? m_ext : p_r + m_ext;
        end
    end

    assign p = p_r;
endmodule
