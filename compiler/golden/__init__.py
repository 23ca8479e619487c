"""Golden executors the tests compare against: the numpy int8/int16 reference
(`reference.py`, bit-exact with TFLite-Micro), the float executor (`float_ref.py`) and
TFLite-Micro itself (`tflm.py`)."""
