#!/usr/bin/env python3
"""The module graph of libkiln: no cycles, no lower module using a higher one.

A module is a folder under lib/ (util, spec, ..., render/engines, render, qa, release);
include/kiln/X.h belongs to module X, except error.h and buf.h, which lib/util implements.
Two checks:

  includes  every `#include "..."` of lib/** and include/kiln/*.h is an edge from the module
            of the including file to the module of the included one.
  calls     (with --objects DIR) every object file's undefined kiln_* symbols (nm) are edges
            from its module to the module whose object defines them.

On each graph: a cycle between modules is an error, and so is an edge from a lower module to
a higher one in LAYERS below (the design's order of the pipeline: a stage may use the stages
before it, never those after). A module missing from LAYERS is an error too: put a new folder
in its place in the list. Also errors:
  - a private header (lib/M/x.h) included from outside M: other modules go through
    include/kiln/. util's headers are for every module, and a folder's headers are for the
    folder above it too (render/ includes render/engines/engine.h);
  - at the call level, a cycle between two object files of one module (ai.o calls dispatch.o
    which calls back into ai.o): the files of a module are layered too.

LAYERS, lowest first:
  util < spec < plan < catalog < project < recipe < train < render/engines < render
       < portfolio < release < qa < review < polish
(train, portfolio, review and polish are not written yet; their places are the design's:
train makes LoRAs the render engines use; release writes the portfolio; QA checks renders
and release folders alike (it reads provenance.json, ipfs.json); review and polish act on
QA's verdicts. `kiln build` orders the stages render, qa, release in the command.)

Usage: check-modules.py [--src DIR] [--objects OBJ_OR_DIR...]
  --src      the source tree (default: the parent of this script's folder)
  --objects  the library's object files, or folders searched for *.o (CTest passes
             $<TARGET_OBJECTS:kiln>; by hand: build/CMakeFiles/kiln.dir); the module of an
             object is the lib/ folder its path names
Prints every problem with the file (and line, or symbol) that causes it; exit 1 if any.
"""
import argparse
import os
import re
import subprocess
import sys

LAYERS = ["util", "spec", "plan", "catalog", "project", "recipe", "train", "render/engines",
          "render", "portfolio", "release", "qa", "review", "polish"]
# public headers implemented by a module of another name
HEADER_MODULE = {"error": "util", "buf": "util"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of_header(path):
    """The module of an include path as written: "kiln/X.h", "render/compose.h", ..."""
    if path.startswith("kiln/"):
        name = os.path.splitext(path[len("kiln/"):])[0]
        return HEADER_MODULE.get(name, name)
    d = os.path.dirname(path)
    return d or None


def module_of_file(src, path):
    rel = os.path.relpath(path, src)
    if rel.startswith("include" + os.sep + "kiln" + os.sep):
        return module_of_header("kiln/" + os.path.basename(rel))
    if rel.startswith("lib" + os.sep):
        return os.path.dirname(rel[len("lib" + os.sep):]).replace(os.sep, "/") or None
    return None


def private_ok(user, header):
    """may module `user` include the private header "header" (as written)?"""
    owner = module_of_header(header)
    return (header.startswith("kiln/") or owner == "util" or owner == user or
            (owner or "").startswith(user + "/"))


def include_edges(src, private):
    """{(from, to): [where, ...]} over lib/** and include/kiln/*.h; private: [where, ...] of
    private headers included from another module"""
    edges = {}
    files = []
    for top in ("lib", os.path.join("include", "kiln")):
        for root, _, names in os.walk(os.path.join(src, top)):
            files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".c", ".h"))]
    for f in sorted(files):
        a = module_of_file(src, f)
        with open(f, encoding="utf-8", errors="replace") as fh:
            for no, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                b = module_of_header(m.group(1))
                where = "%s:%d: #include \"%s\"" % (os.path.relpath(f, src), no, m.group(1))
                if a and b and a != b:
                    edges.setdefault((a, b), []).append(where)
                if a and b and not private_ok(a, m.group(1)):
                    private.append("%s: private header of %s, included from %s" % (where, b, a))
    return edges


def object_module(path):
    """the module of an object file: the folder after the last /lib/ of its path"""
    p = "/" + os.path.abspath(path).replace(os.sep, "/")
    i = p.rfind("/lib/")
    if i < 0:
        return None
    return os.path.dirname(p[i + len("/lib/"):]) or None


def short(path):
    p = os.path.abspath(path).replace(os.sep, "/")
    i = p.rfind("/lib/")
    return p[i + 1:] if i >= 0 else path


def call_edges(paths, files):
    """{(from, to): [where, ...]} from nm over the object files (or the *.o under folders) in
    paths; files: the same between the object files of one module, {(a.o, b.o): [symbol]}"""
    objs = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                objs += [os.path.join(root, n) for n in sorted(names) if n.endswith(".o")]
        else:
            objs.append(path)
    if not objs:
        sys.exit("check-modules: no object files in %s (build first)" % " ".join(paths))
    defined = {}
    defined_in = {}
    undefined = []
    for o in sorted(objs):
        mod = object_module(o)
        if not mod:
            continue
        out = subprocess.run(["nm", "-P", o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[0].startswith("kiln_"):
                continue
            sym, kind = parts[0], parts[1]
            if kind == "U":
                undefined.append((mod, o, sym))
            elif kind.isupper():
                defined[sym] = mod
                defined_in[sym] = o
    edges = {}
    for mod, o, sym in undefined:
        to = defined.get(sym)
        if to and to != mod:
            where = "%s: calls %s" % (short(o), sym)
            edges.setdefault((mod, to), []).append(where)
        elif to == mod and defined_in[sym] != o:
            key = (short(o), short(defined_in[sym]))
            files.setdefault(key, []).append(sym)
    return edges


def cycles(edges):
    """strongly connected components of more than one module (Tarjan)"""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp, key=rank))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def shortest(edges, start, goal):
    """the modules on a shortest path start .. goal (BFS), start included"""
    prev = {start: None}
    todo = [start]
    while todo:
        v = todo.pop(0)
        if v == goal:
            break
        for a, b in sorted(edges):
            if a == v and b not in prev:
                prev[b] = v
                todo.append(b)
    path = [goal]
    while prev.get(path[-1]) is not None:
        path.append(prev[path[-1]])
    return path[::-1]


def rank(m):
    return LAYERS.index(m) if m in LAYERS else len(LAYERS)


def check(kind, edges):
    problems = 0
    mods = sorted({m for e in edges for m in e})
    for m in mods:
        if m not in LAYERS:
            problems += 1
            print("%s: module '%s' is not in the layer list (scripts/check-modules.py LAYERS): "
                  "add it in its place" % (kind, m))
            for (a, b), where in sorted(edges.items()):
                if m in (a, b):
                    print("    %s" % where[0])
    for comp in cycles(edges):
        problems += 1
        print("%s: cycle between %s; each edge against the layers closes one:" %
              (kind, ", ".join(comp)))
        inside = {e: w for e, w in edges.items() if e[0] in comp and e[1] in comp}
        back = [e for e in inside if rank(e[0]) <= rank(e[1])] or list(inside)[:1]
        for a, b in sorted(back, key=lambda e: (rank(e[0]), rank(e[1]))):
            path = shortest(inside, b, a)
            print("    %s" % " -> ".join([a] + path))
            for x, y in zip([a] + path, path):
                print("        %s -> %s: %s%s" % (x, y, inside[(x, y)][0],
                      " (+%d more)" % (len(inside[(x, y)]) - 1) if len(inside[(x, y)]) > 1 else ""))
    for (a, b), where in sorted(edges.items(), key=lambda e: (rank(e[0][0]), rank(e[0][1]))):
        if a in LAYERS and b in LAYERS and rank(a) < rank(b):
            problems += 1
            print("%s: %s uses %s, a higher module (%s comes after %s):" % (kind, a, b, b, a))
            for w in where:
                print("    %s" % w)
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.dirname(here))
    ap.add_argument("--objects", nargs="+")
    args = ap.parse_args()
    private = []
    problems = check("includes", include_edges(args.src, private))
    for p in private:
        problems += 1
        print("includes: %s" % p)
    if args.objects:
        files = {}
        problems += check("calls", call_edges(args.objects, files))
        for comp in cycles(files):
            problems += 1
            print("calls: cycle between the files %s of one module:" % ", ".join(comp))
            for (a, b), syms in sorted(files.items()):
                if a in comp and b in comp:
                    print("    %s calls %s" % (a, ", ".join(sorted(set(syms)))))
    print("module graph: %d problem%s" % (problems, "" if problems == 1 else "s"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
