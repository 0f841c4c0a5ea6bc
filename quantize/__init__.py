"""Pruning (tensorflow-model-optimization) and quantization-aware fine-tuning (QKeras)."""
