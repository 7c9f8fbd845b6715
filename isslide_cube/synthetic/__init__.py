"""Physically based synthetic raw ISSLIDE dataset (see DESIGN.md section 5).

>>> from isslide_cube import synthetic
>>> sorted(synthetic.PRESETS)
['paper', 'small', 'tiny']
"""

from isslide_cube.synthetic.generator import OutputExistsError, generate
from isslide_cube.synthetic.presets import PRESETS, Preset, PresetError, get_preset
from isslide_cube.synthetic.quicklook import quicklook

__all__ = ["PRESETS", "OutputExistsError", "Preset", "PresetError", "generate", "get_preset", "quicklook"]
