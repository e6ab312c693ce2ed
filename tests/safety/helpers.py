"""What the safety tests share: the tiny training command and the user models."""

#: the smallest training that exercises everything: digits (1,797 rows of 64), two epochs, a tiny net
TRAIN = ("train", "--kind", "dense", "--data", "digits", "--latent", "4", "--hidden", "16", "--epochs", "2",
         "--batch-size", "256", "--seed", "1", "-q")


#: small user models the tests point the CLI at, written to the test's folder as m.py
MODELS = '''
import os
import sys
import time

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)


class Exit0(nn.Module):
    def __init__(self):
        super().__init__()
        sys.exit(0)


class ExitRun(Net):
    def forward(self, x):
        sys.exit("model says bye")


class Printer(Net):
    def forward(self, x):
        print("hello from the model")
        return self.fc(x)


class Bad(Net):
    def forward(self, x):
        return self.fc(x.view(-1, 3))


class Sleeper(Net):
    def forward(self, x):
        open(os.environ["SLEEPER_READY"], "w").close()
        time.sleep(60)
        return self.fc(x)


class CJK(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("编码器", nn.Linear(8, 2))
        self.add_module("解码器", nn.Linear(2, 8))

    def forward(self, x):
        return self.解码器(self.编码器(x))
'''
