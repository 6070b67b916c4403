"""Recording: event state machine, RAM pre-roll of encoded packets, MPEG-TS muxer, the Recorder.

Import the submodules themselves (edge.recording.recorder, .events, .analysis): the package does not
import the recorder, so `consentcam detect` gets the event logic without PyAV.
"""
