"""PyTorch reference implementations of every preset (tests and benchmarks only; never imported by ms_gan)."""
