"""Benchmarks: the service against the course notebook and a bare Flask app (`python -m bench`).

Each `bench_*.py` runs alone (`python bench/bench_train.py [--smoke]`) and prints a table;
`run_all.py` runs them all and prints one table. Timings are medians of runs interleaved with
their baseline, so that the ratios hold on a shared, noisy machine.
"""
