"""Recording: event state machine, RAM pre-roll of encoded packets, MPEG-TS muxer, the Recorder."""

from edge.recording.events import EventMachine, Phase
from edge.recording.recorder import Recorder

__all__ = ["EventMachine", "Phase", "Recorder"]
