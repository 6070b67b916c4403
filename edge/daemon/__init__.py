"""The long-running `consentcam run` process: capture -> motion -> recorder -> vault, plus MQTT.

Modules: ``notify`` (systemd sd_notify without needing systemd), ``status`` (the runtime status
file `consentcam status` reads), ``runner`` (the daemon itself).
"""
