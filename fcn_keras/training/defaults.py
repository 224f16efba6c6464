"""Training defaults that several places share (the Python API, the command line, the demo).

Light on purpose (no Keras, no TensorFlow): the command line reads these to write its help.
"""

BACKUP_EVERY = 500  # steps between backups within an epoch (`Backup`; None or 0: epoch ends only)

# From scratch the paper's SGD recipe (fixed rates made for fine-tuning ImageNet weights
# with an unnormalised loss) leaves the loss at ln(num_classes): Adam at this rate learns.
SCRATCH_OPTIMIZER, SCRATCH_LR = "adam", 3e-4
