// The latency pipeline that every packed MAC unit shares (edgec_sdv_mac, edgec_conv_mac,
// edgec_dual8x8_mac): the DSP cell takes 3 cycles from an operand cycle to the accumulator
// that holds its product (input, product and accumulator registers), and the unit registers
// the recovered sums once more, so out_valid pulses LATENCY = 4 cycles after the last cycle.
//
// en is the clock enable of every register: a cycle with en low does not count and nothing
// moves. first and last are this cycle's in_valid & in_first and in_valid & in_last; data is
// what the fabric computes from this cycle's operands for the recovery (canaries, product
// signs). first2 and first3 are first delayed by 2 and 3 cycles, data3 is data delayed by 3:
// in a cycle, first3 and data3 belong to the newest product the accumulator holds. result is
// the unit's recovered sums; in the cycle where the accumulator holds the last cycle's product,
// out captures result, and out_valid is high in the next cycle (and holds while en is low).
// rst (synchronous) clears only the last/out_valid pipeline.
module edgec_packed_handshake #(
    parameter integer DATA_BITS = 1,
    parameter integer OUT_BITS = 1
) (
    input wire clk,
    input wire rst,
    input wire en,
    input wire first,
    input wire last,
    input wire [DATA_BITS-1:0] data,
    input wire [OUT_BITS-1:0] result,
    output wire first2,
    output wire first3,
    output wire [DATA_BITS-1:0] data3,
    output reg out_valid,
    output reg [OUT_BITS-1:0] out
);
    reg [2:0] first_d;
    reg [2:0] last_d;
    reg [DATA_BITS-1:0] data_d [0:2];
    always @(posedge clk) begin
        if (en) begin
            first_d <= {first_d[1:0], first};
            data_d[0] <= data;
            data_d[1] <= data_d[0];
            data_d[2] <= data_d[1];
            if (last_d[2]) out <= result;
        end
        if (rst) begin
            last_d <= 3'b000;
            out_valid <= 1'b0;
        end else if (en) begin
            last_d <= {last_d[1:0], last};
            out_valid <= last_d[2];
        end
    end
    assign first2 = first_d[1];
    assign first3 = first_d[2];
    assign data3 = data_d[2];
endmodule
