"""The networks: degradation models (SpaDnet, SpeDnet), inverse mappings (SpeUnet; PFS2C2's SpaUp,
SpeUp) and UDS2C2's GCE and SCFConv, and the MSI gain of the normalised degradation model."""
from model.group_enhancement import GCE, MSIGain
from model.scfconv import SCFConv, SCFSpaDnet
from model.spatial_downsample import SpaDnet
from model.spatial_upsample import SpaUp
from model.spectral_downsample import SpeDnet
from model.spectral_upsample import SpeUnet, SpeUp

__all__ = ["SpaDnet", "SpeDnet", "SpeUnet", "SpaUp", "SpeUp", "GCE", "MSIGain", "SCFConv", "SCFSpaDnet"]
