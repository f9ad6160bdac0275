"""One module per pipeline stage: a pure function (arrays and a params object in, arrays out) and a file wrapper."""
