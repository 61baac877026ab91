// Canaries of the DSP48 packed units (edgec.backends.fpga.lanes; packed_datapath.canaries is
// the bit-exact model), in LUTs: N weights w_i = w[i*W +: W] and M activations
// x_j = x[j*A +: A]; segment s (0 < s < N + M - 1) gets
//
//     canary[(s-1)*CB +: CB] = sum_{i+j=s} w_i * x_j   mod 2**CB
//
// from each operand's low CB bits (as a two's-complement number: an operand narrower than CB
// is sign- or zero-extended first). Segment 0 needs none. edgec_sdv_mac is the case M = 1
// (lane l = segment l), edgec_conv_mac the general one. Combinational.
module edgec_packed_canary #(
    parameter integer N = 4,
    parameter integer M = 3,
    parameter integer W = 4,
    parameter integer A = 4,
    parameter integer W_SIGNED = 1,
    parameter integer X_SIGNED = 1,
    parameter integer CB = 3
) (
    /* verilator lint_off UNUSEDSIGNAL */
    // Only each operand's low CB bits are used (all its bits when it is narrower).
    input wire [N*W-1:0] w,
    input wire [M*A-1:0] x,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [(N+M-2)*CB-1:0] canary
);
    localparam integer SEGMENTS = N + M - 1;

    // Each operand's low CB bits as a two's-complement number.
    /* verilator lint_off UNUSEDSIGNAL */
    // With M = 1 weight 0 meets only segment 0 (likewise activation 0 with N = 1), which has no
    // canary: its low bits go unused.
    wire [N*CB-1:0] w_low;
    wire [M*CB-1:0] x_low;
    /* verilator lint_on UNUSEDSIGNAL */
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
                assign x_low[n*CB +: CB] = x[n*A +: CB];
            end else begin : extend
                assign x_low[n*CB +: CB] = {{(CB - A){X_SIGNED != 0 && x[n*A + A - 1]}}, x[n*A +: A]};
            end
        end
    endgenerate

    // Segment s's products mod 2**CB, summed along a chain over the weight index.
    genvar s;
    generate
        for (s = 1; s < SEGMENTS; s = s + 1) begin : segment
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
endmodule
