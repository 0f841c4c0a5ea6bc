"""hls4ml conversion, bit-accurate C++ emulation and HLS projects."""
