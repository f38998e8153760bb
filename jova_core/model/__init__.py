from .transformer import JoVATransformer

__all__ = ["JoVATransformer"]
