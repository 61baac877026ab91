// Packed operand word of the DSP48 units (edgec_sdv_mac, edgec_conv_mac), by wiring alone:
// COUNT two's-complement (SIGNED) or unsigned values of BITS bits each, value i at bit
// i*STRIDE, as the difference of two WIDTH-bit words of non-overlapping fields:
//
//     low - sign = sum_i v_i * 2**(i*STRIDE)     (modulo 2**WIDTH)
//
// low bit i*STRIDE + r is bit r of v_i (r < BITS, or r < BITS - 1 when SIGNED), sign bit
// i*STRIDE + BITS - 1 is v_i's sign bit (SIGNED only); every other bit is zero. STRIDE >= BITS
// (the planner and conv_packed_rtl check it); fields above WIDTH are cut. The units feed
// (low, sign) to the DSP48's pre-adder (D - A), or subtract them in the fabric.
module edgec_packed_fields #(
    parameter integer COUNT = 4,
    parameter integer BITS = 4,
    parameter integer SIGNED = 1,
    parameter integer STRIDE = 7,
    parameter integer WIDTH = 27
) (
    input wire [COUNT*BITS-1:0] values,
    output wire [WIDTH-1:0] low,
    output wire [WIDTH-1:0] sign
);
    localparam integer LOW_BITS = SIGNED != 0 ? BITS - 1 : BITS;

    genvar b;
    generate
        for (b = 0; b < WIDTH; b = b + 1) begin : bit_of
            if (b / STRIDE < COUNT && b % STRIDE < LOW_BITS) begin : low_field
                assign low[b] = values[(b / STRIDE) * BITS + b % STRIDE];
            end else begin : low_gap
                assign low[b] = 1'b0;
            end
            if (SIGNED != 0 && b >= BITS - 1 && (b - BITS + 1) % STRIDE == 0 && (b - BITS + 1) / STRIDE < COUNT)
            begin : sign_field
                assign sign[b] = values[((b - BITS + 1) / STRIDE) * BITS + BITS - 1];
            end else begin : sign_gap
                assign sign[b] = 1'b0;
            end
        end
    endgenerate
endmodule
