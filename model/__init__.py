"""The networks: degradation models (SpaDnet, SpeDnet) and inverse mappings (SpeUnet; PFS2C2's SpaUp, SpeUp)."""
from model.spatial_downsample import SpaDnet
from model.spatial_upsample import SpaUp
from model.spectral_downsample import SpeDnet
from model.spectral_upsample import SpeUnet, SpeUp

__all__ = ["SpaDnet", "SpeDnet", "SpeUnet", "SpaUp", "SpeUp"]
