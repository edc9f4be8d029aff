"""Print the scalars of a TensorBoard log directory as 'tag step value' lines, read
with TensorBoard's own EventAccumulator."""
import sys

from tensorboard.backend.event_processing import event_accumulator

acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    for ev in acc.Scalars(tag):
        print(f"{tag.replace(' ', '_')} {ev.step} {ev.value!r}")
