"""consentcam: encrypted motion clips on the device, released only with the owner's consent."""

__version__ = "0.1.0"
