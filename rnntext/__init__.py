"""Text handling shared by training and serving: vocabularies, tokenization with offsets, tag schemes,
padding and the artifact manifest.

It imports no torch, so the serving image can use exactly the code that produced the training ids.
"""
