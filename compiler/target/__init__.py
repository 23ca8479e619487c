"""The target: board files (`boards.py`), building the firmware and reading its linker map
(`firmware.py`), QEMU (`emulator.py`), the stack bound from GCC's call graph (`stack.py`), and
the host build of runtime_c that answers the kernels' scratch-size queries (`hostlib.py`)."""
