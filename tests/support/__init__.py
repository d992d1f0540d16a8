"""What the tests share besides fixtures (those stay in ``tests/conftest.py``), imported one way:
``from tests.support.media import write_mp4``.

- :mod:`.media`: clips with planted signal, and broken ones;
- :mod:`.datasets`: MER label files, feature folders in the MER layout, feature-less datasets;
- :mod:`.samples`: the real MER2023 samples, where the machine has them;
- :mod:`.random_models`: tiny (and full-size) random stand-ins of the paper's encoders;
- :mod:`.fakeserver`: a fake Gemini / OpenAI-compatible server on 127.0.0.1.
"""
