"""The IR (`ir.py`), TFLite/gemmlowp fixed-point math (`quant.py`), each op's integer
parameters (`lower.py`; the LSTM's in `lstm.py`, the int16 LUT ops' in `lut16.py`), the op
declarations (`ops_support.py`) and the float semantics of the transformer ops
(`transformer_ops.py`)."""
