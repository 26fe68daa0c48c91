"""fakescope training code (`fakescope_train`): the builtin detector and LMM fine-tuning. Needs torch."""
