"""``fairseq-train`` with a spy on the criterion: every training batch's masked positions per
example are appended, as json lines ``{"stream", "id", "masked"}``, to ``$WEAM_SPY_FILE``.

Run as ``python spy_train.py FAIRSEQ-TRAIN-ARGS...``: the real fairseq_cli.train entry point,
data-loader workers included; only the criterion's input is recorded (in the main process, after
the workers built and collated the batch).
"""

import json
import os
import sys

from fairseq_cli import train

import fairseq_weam.criterions.weam as weam_criterion

_forward = weam_criterion.WeamCriterion.forward


def _spy(self, model, sample, reduce=True):
    if model.training:
        with open(os.environ["WEAM_SPY_FILE"], "a") as out:
            for i, (sid, stream) in enumerate(zip(sample["id"].tolist(), sample["stream"].tolist())):
                masked = sample["target"][i].ne(self.padding_idx).nonzero().flatten().tolist()
                out.write(json.dumps({"stream": stream, "id": sid, "masked": masked}) + "\n")
    return _forward(self, model, sample, reduce)


weam_criterion.WeamCriterion.forward = _spy

if __name__ == "__main__":
    sys.argv[0] = "fairseq-train"
    sys.exit(train.cli_main())
