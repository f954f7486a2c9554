"""PyTorch peer: the training run iris-trainer does, written the way a PyTorch user would.

Same work as `iris-trainer --data FILE --batch-size B --epochs E`: the CSV read with
pandas.read_csv (header, label in the last column), a seeded stratified split (test fraction 0.2),
standardisation fitted on the training rows, an MLP with the same widths and ReLU, Adam with the
same learning rate, betas and epsilon (Burn's default epsilon is 1e-5), cross-entropy, shuffled
batches, and every epoch the training loss/accuracy (from the batches' logits) and the test
loss/accuracy (one forward pass), then the final scores. Prints one JSON line.

  python bench/torch_train.py --data FILE [--epochs 1] [--batch-size 256] [--threads 2]
                              [--device cpu|cuda]

`fit_s` covers what iris-trainer's `duration_s` covers (split, scaling, tensors, epochs, final
scores); `loop_s` the epochs alone; `read_s` the CSV read. With --device cuda the data is moved to
the GPU once and the per-epoch metrics are read back once per epoch.
"""
import argparse
import json
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--batch-size", type=int, default=256)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--hidden", type=int, nargs="+", default=[16])
p.add_argument("--test-fraction", type=float, default=0.2)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=42)
p.add_argument("--device", default="cpu")
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
device = torch.device(a.device)
imported = time.perf_counter()

frame = pd.read_csv(a.data)
x_all = frame.iloc[:, :-1].to_numpy(dtype=np.float32)
labels = frame.iloc[:, -1]
classes = sorted(labels.unique())
y_all = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
del frame, labels
read = time.perf_counter()

fit_start = time.perf_counter()
# Stratified split: each class shuffled and cut at the same fraction.
rng = np.random.default_rng(a.seed)
test_idx, train_idx = [], []
for c in range(len(classes)):
    rows = rng.permutation(np.flatnonzero(y_all == c))
    cut = int(round(len(rows) * a.test_fraction))
    test_idx.append(rows[:cut])
    train_idx.append(rows[cut:])
train_idx, test_idx = np.concatenate(train_idx), np.concatenate(test_idx)
mean = x_all[train_idx].mean(axis=0)
std = x_all[train_idx].std(axis=0)
std[std == 0] = 1.0
x_train = torch.from_numpy((x_all[train_idx] - mean) / std).to(device)
y_train = torch.from_numpy(y_all[train_idx]).to(device)
x_test = torch.from_numpy((x_all[test_idx] - mean) / std).to(device)
y_test = torch.from_numpy(y_all[test_idx]).to(device)
del x_all

widths = [x_train.shape[1], *a.hidden, len(classes)]
layers = []
for i, (d_in, d_out) in enumerate(zip(widths, widths[1:])):
    layers.append(torch.nn.Linear(d_in, d_out))
    if i < len(widths) - 2:
        layers.append(torch.nn.ReLU())
model = torch.nn.Sequential(*layers).to(device)
optim = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-5)
loss_fn = torch.nn.CrossEntropyLoss()
gen = torch.Generator(device=device)
gen.manual_seed(a.seed)
n, batch = x_train.shape[0], min(a.batch_size or x_train.shape[0], x_train.shape[0])


def scores(x, y):
    with torch.no_grad():
        logits = model(x)
        return loss_fn(logits, y), (logits.argmax(1) == y).float().mean()


history = []
loop_start = time.perf_counter()
for epoch in range(1, a.epochs + 1):
    model.train()
    order = torch.randperm(n, generator=gen, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(0, n, batch):
        idx = order[start:start + batch]
        xb, yb = x_train[idx], y_train[idx]
        logits = model(xb)
        loss = loss_fn(logits, yb)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
    model.eval()
    test_loss, test_acc = scores(x_test, y_test)
    # One read back to the host per epoch.
    history.append([v.item() for v in (loss_sum / n, correct / n, test_loss, test_acc)])
if device.type == "cuda":
    torch.cuda.synchronize()
loop_end = time.perf_counter()
train_loss, train_acc = scores(x_train, y_train)
test_loss, test_acc = scores(x_test, y_test)
final = [train_loss.item(), train_acc.item(), test_loss.item(), test_acc.item()]
end = time.perf_counter()

print(json.dumps({
    "torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
    "rows": len(y_all), "train_rows": n, "epochs": a.epochs, "batch_size": batch,
    "import_s": imported - START, "read_s": read - imported, "fit_s": end - fit_start,
    "loop_s": loop_end - loop_start, "epochs_per_s": a.epochs / (loop_end - loop_start),
    "fit_epochs_per_s": a.epochs / (end - fit_start),
    "train_accuracy": final[1], "test_loss": final[2], "test_accuracy": final[3],
}))
