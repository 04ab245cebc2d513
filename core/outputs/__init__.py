"""What every output says: captions naming the prediction and baseline, the one colour
convention, printable tables and the saturation sheet."""
