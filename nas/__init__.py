"""Neural architecture search under the board's memory, scored by the real compiler.

    spaces     `nas.space_cnn` (MCUNet-style MobileNetV2 supernet), `nas.space_vit` (MCUFormer-style ViT)
    training   `nas.train`  supernet with weight sharing (sandwich rule + in-place distillation)
    scoring    `nas.score`  int8 export -> `compiler.planner.choose_for` -> SRAM / flash / instructions
    search     `nas.search` Optuna NSGA-II over accuracy with inherited weights and the compiler's numbers
    loop       `nas.loop`   train -> search -> fine-tune -> PTQ -> compile -> QEMU (`microtile nas`)
    data       `nas.data`   image folder / .npz loaders, the procedural "small object" task, digits

Needs torch, onnx, onnxruntime, optuna and tqdm (matplotlib for the Pareto plot, scikit-learn for digits).
"""
