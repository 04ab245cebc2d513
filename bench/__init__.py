"""igkit performance benchmarks: igkit against the cost floor and against Captum.

Run ``python -m bench`` from the repository root. Every ratio is measured side by
side in one run: the two contenders alternate, repeat, and their medians are
compared, so background load hits both alike.
"""
