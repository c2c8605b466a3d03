# Cross-check of a training recipe in Debian's PyTorch 1.13, on the same ImageFolder data: is a shortfall of
# `resnet train` the recipe's or our implementation's? It trains the seed's ResNet-18 (../shared/bench/seed_resnet.py)
# with the fast5 recipe's rules and prints the test accuracy after each epoch as JSON lines.
#
# usage: /usr/bin/python3 scripts/torch-recipe.py DATA_DIR [epochs] [lr] [label_smoothing] [limit] [threads]
#   DATA_DIR holds train/<class>/*.jpg and test/<class>/*.jpg (e.g. /tmp/cifar/cifar10)
# Recipe (as src/train/config.ts fast5): batch 128, SGD nesterov momentum 0.9, weight decay 5e-4 on conv/linear
# weights only, lr rising linearly from 0 over the first 20% of the steps and falling linearly to 0 at the last one,
# RandomCrop(32, padding 4) + RandomHorizontalFlip + Normalize. Never a dependency of the product or its tests.
import json, os, sys, time
import torch, torch.nn as nn
import torchvision, torchvision.transforms as T

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'bench'))
from seed_resnet import ResNet18

data = sys.argv[1]
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
peak = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
smooth = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
limit = int(sys.argv[5]) if len(sys.argv) > 5 else 0
threads = int(sys.argv[6]) if len(sys.argv) > 6 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)

mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def load(split):
    """All images of a split as one uint8 tensor [N,3,32,32] and labels, decoded once with PIL."""
    ds = torchvision.datasets.ImageFolder(os.path.join(data, split))
    xs = torch.empty(len(ds), 3, 32, 32, dtype=torch.uint8)
    ys = torch.empty(len(ds), dtype=torch.long)
    to = T.PILToTensor()
    for i, (img, y) in enumerate(ds):
        xs[i] = to(img.convert('RGB'))
        ys[i] = y
    return xs, ys


xtr, ytr = load('train')
xte, yte = load('test')
if limit:
    g = torch.Generator().manual_seed(0)
    keep = torch.randperm(len(ytr), generator=g)[:limit]
    xtr, ytr = xtr[keep], ytr[keep]
m_ = torch.tensor(mean).view(1, 3, 1, 1) * 255
s_ = torch.tensor(std).view(1, 3, 1, 1) * 255


def augment(x):
    """RandomCrop(32, padding 4, zeros) and a horizontal flip per image, on uint8 NCHW."""
    n = x.shape[0]
    p = torch.zeros(n, 3, 40, 40, dtype=torch.uint8)
    p[:, :, 4:36, 4:36] = x
    out = torch.empty_like(x)
    ty = torch.randint(0, 9, (n,))
    tx = torch.randint(0, 9, (n,))
    fl = torch.rand(n) < 0.5
    for i in range(n):
        c = p[i, :, ty[i]:ty[i] + 32, tx[i]:tx[i] + 32]
        out[i] = c.flip(2) if fl[i] else c
    return out


def norm(x):
    return ((x.float() - m_) / s_).contiguous(memory_format=torch.channels_last)


model = ResNet18().to(memory_format=torch.channels_last)
decay = [p for n, p in model.named_parameters() if p.dim() > 1]
nodecay = [p for n, p in model.named_parameters() if p.dim() <= 1]
opt = torch.optim.SGD([{'params': decay, 'weight_decay': 5e-4}, {'params': nodecay, 'weight_decay': 0}],
                      lr=peak, momentum=0.9, nesterov=True)
B = 128
steps_per_epoch = (len(ytr) + B - 1) // B
total = epochs * steps_per_epoch
warm = 0.2 * total


def lr_at(k):  # k: 0-based step; the lr of step k: src/train/schedule.ts 'linear', but with the warm-up not rounded to whole steps (78.2 against 78 at 391 steps)
    t = k + 1
    return peak * t / warm if t <= warm else peak * max(0.0, (total - t) / (total - warm))


lossf = nn.CrossEntropyLoss(label_smoothing=smooth)
step = 0
t0 = time.time()
for ep in range(epochs):
    model.train()
    perm = torch.randperm(len(ytr))
    correct = 0
    for b in range(steps_per_epoch):
        idx = perm[b * B:(b + 1) * B]
        x = norm(augment(xtr[idx]))
        y = ytr[idx]
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        out = model(x)
        loss = lossf(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        correct += (out.argmax(1) == y).sum().item()
        step += 1
        if step % 100 == 0:
            print(json.dumps({'kind': 'step', 'step': step, 'loss': loss.item(), 'lr': lr_at(step - 1)}), flush=True)
    model.eval()
    tc = 0
    with torch.no_grad():
        for b in range(0, len(yte), 500):
            tc += (model(norm(xte[b:b + 500])).argmax(1) == yte[b:b + 500]).sum().item()
    print(json.dumps({'kind': 'epoch', 'epoch': ep + 1, 'train_acc': correct / len(ytr), 'test_acc': tc / len(yte),
                      'wall_s': time.time() - t0}), flush=True)
