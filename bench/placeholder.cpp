// replaced by the benchmark
