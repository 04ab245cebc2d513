"""The mathematics of attribution: integrated gradients along a path (quadrature rules, adaptive
and planned grids, baselines, targets), its result type and checks, saturation curves and the
scores that compare attribution maps. Nothing here reads files or knows a domain."""
