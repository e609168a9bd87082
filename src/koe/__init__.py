"""koe (声): turn text LLMs into speech-text language models.

    koe synth                      # TinySpeech with espeak-ng voices and exact word timings
    koe align manifest=...         # pocketsphinx forced alignment
    koe units fit / encode / stats # discrete speech tokens
    koe run tiny                   # the whole built-in pipeline
"""

__version__ = "0.1.0"
