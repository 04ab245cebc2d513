"""The other attribution methods (saliency, SmoothGrad, occlusion, Grad-CAM, Blur IG, Guided IG,
expected gradients, XRAI) behind one registry (:mod:`igkit.methods.registry`) that plugins extend."""
