"Data files shipped with the package: the tiny shapes model, its tokenizer and its mask decoder (`paligemma.demo.tiny_model.load_tiny`)."
