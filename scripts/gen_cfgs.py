#!/usr/bin/env python3
"""Writes configs/models/{yolov3,yolov3-tiny,demo-tiny}.cfg: darknet's published
YOLOv3 and YOLOv3-tiny layer lists (pjreddie/darknet cfg/yolov3.cfg and
cfg/yolov3-tiny.cfg, for 80 classes; dettrain sets the head filters from the
data set's class count), and the small demo model. Run from the repo root."""

NET = """[net]
# Training settings of darknet's own trainer are read and ignored:
# dettrain takes them from its YAML config.
batch=64
subdivisions=16
width={size}
height={size}
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.001
burn_in=1000
max_batches=500200
policy=steps
steps=400000,450000
scales=.1,.1
"""

def conv(f, size, stride=1, bn=True, act="leaky"):
    s = "\n[convolutional]\n"
    if bn:
        s += "batch_normalize=1\n"
    s += f"filters={f}\nsize={size}\nstride={stride}\npad=1\nactivation={act}\n"
    return s

def yolo(mask, anchors, num):
    a = ",  ".join(f"{w},{h}" for w, h in anchors)
    return (f"\n[yolo]\nmask = {','.join(map(str, mask))}\nanchors = {a}\nclasses=80\nnum={num}\n"
            "jitter=.3\nignore_thresh = .7\ntruth_thresh = 1\nrandom=1\n")

def head(f):
    return conv(f, 1, bn=False, act="linear")

def yolov3():
    anchors = [(10,13),(16,30),(33,23),(30,61),(62,45),(59,119),(116,90),(156,198),(373,326)]
    s = NET.format(size=416)
    s += conv(32, 3)
    def stage(f, n):
        out = conv(f, 3, 2)
        for _ in range(n):
            out += conv(f // 2, 1) + conv(f, 3) + "\n[shortcut]\nfrom=-3\nactivation=linear\n"
        return out
    for f, n in [(64,1),(128,2),(256,8),(512,8),(1024,4)]:
        s += stage(f, n)
    # layer 74 ends the backbone (darknet53.conv.74)
    s += "\n######################\n"
    s += conv(512,1) + conv(1024,3) + conv(512,1) + conv(1024,3) + conv(512,1) + conv(1024,3)
    s += head(255) + yolo([6,7,8], anchors, 9)
    s += "\n[route]\nlayers = -4\n" + conv(256,1) + "\n[upsample]\nstride=2\n" + "\n[route]\nlayers = -1, 61\n"
    s += conv(256,1) + conv(512,3) + conv(256,1) + conv(512,3) + conv(256,1) + conv(512,3)
    s += head(255) + yolo([3,4,5], anchors, 9)
    s += "\n[route]\nlayers = -4\n" + conv(128,1) + "\n[upsample]\nstride=2\n" + "\n[route]\nlayers = -1, 36\n"
    s += conv(128,1) + conv(256,3) + conv(128,1) + conv(256,3) + conv(128,1) + conv(256,3)
    s += head(255) + yolo([0,1,2], anchors, 9)
    return s

def tiny(size, widths, anchors):
    s = NET.format(size=size)
    f = widths
    for i, w in enumerate(f[:5]):
        s += conv(w, 3) + "\n[maxpool]\nsize=2\nstride=2\n"
    s += conv(f[5], 3) + "\n[maxpool]\nsize=2\nstride=1\n"
    s += conv(f[6], 3)
    s += "\n###########\n" + conv(f[7], 1) + conv(f[8], 3) + head(255) + yolo([3,4,5], anchors, 6)
    s += "\n[route]\nlayers = -4\n" + conv(f[9], 1) + "\n[upsample]\nstride=2\n"
    s += "\n[route]\nlayers = -1, 8\n" + conv(f[10], 3) + head(255) + yolo([0,1,2], anchors, 6)
    return s

open("configs/models/yolov3.cfg", "w").write(yolov3())
open("configs/models/yolov3-tiny.cfg", "w").write(
    tiny(416, [16,32,64,128,256,512,1024,256,512,128,256], [(10,14),(23,27),(37,58),(81,82),(135,169),(344,319)]))
open("configs/models/demo-tiny.cfg", "w").write(
    "# dettrain's demo model: YOLOv3-tiny's layout at a quarter of its width, for\n"
    "# 128x128 inputs of the synthetic shapes set (anchors fitted to its 14-56 px objects).\n" +
    tiny(128, [8,16,32,64,96,128,128,64,128,32,64], [(14,14),(20,26),(26,20),(32,32),(40,50),(50,40)]))
