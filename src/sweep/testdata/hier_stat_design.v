// The design behind hier_stat.txt and hier_cmos_stat.txt (src/sweep/flow.rs tests): `sub` twice
// in `mid`, `mid` twice and `sub` once more in `top` (5 x sub). Yosys 0.23: read_verilog;
// synth -top top; stat -top top; dffunmap; stat -tech cmos -top top.
module sub(input clk, input [3:0] a, input [3:0] b, output reg [4:0] y);
  always @(posedge clk) y <= a + b;
endmodule
module mid(input clk, input [3:0] a, input [3:0] b, output [4:0] y0, output [4:0] y1);
  sub u0(.clk(clk), .a(a), .b(b), .y(y0));
  sub u1(.clk(clk), .a(a ^ b), .b(b), .y(y1));
endmodule
module top(input clk, input [3:0] a, input [3:0] b, output [4:0] y0, output [4:0] y1, output [4:0] y2, output [4:0] y3, output [4:0] y4, output reg q);
  mid m0(.clk(clk), .a(a), .b(b), .y0(y0), .y1(y1));
  mid m1(.clk(clk), .a(b), .b(a), .y0(y2), .y1(y3));
  sub u2(.clk(clk), .a(a), .b(~b), .y(y4));
  always @(posedge clk) q <= a[0] ^ b[1];
endmodule
