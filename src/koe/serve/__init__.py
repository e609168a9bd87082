"""`koe serve`: a local web demo of a koe model, answers streamed as text and speech (see koe.serve.run)."""
