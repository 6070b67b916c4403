"""The investigator's tool (`consentcam-investigator`): request, receive and verify releases.

It shares no code path with the device's state: its keys and records live in its own home
directory. It reuses the protocol's encoders and decoders (edge.protocol) so both sides agree on
every byte.
"""
