#!/usr/bin/env node
// Oracle for kiln's IPFS module: the npm ipfs-unixfs-importer with the options that reproduce
// `ipfs add -r --cid-version=1` (kubo defaults with CIDv1), and @ipld/car for the CAR.
//
//   node oracle.mjs [--car OUT.car] [--hidden] PATH
//   node oracle.mjs --ls-car FILE.car      roots, then every block's CID (each checked), one a line
//   node oracle.mjs --root-type FILE.car   the root's kind: raw, file, directory, hamt-sharded-directory
//
// Prints "<cid> <path>" for every file and folder imported (PATH itself last, named by its
// base name, as `ipfs add -r` does). Folders are read in bytewise name order; names starting
// with '.' are skipped unless --hidden. The CAR holds every block once, in the order the
// importer stored them (files and folders imported one at a time, so the order is
// deterministic), with the imported root as its one root.
import fs from 'node:fs'
import path from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CarWriter } from '@ipld/car/writer'
import { CarBlockIterator } from '@ipld/car/iterator'
import { sha256 } from 'multiformats/hashes/sha2'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'

// kubo's `ipfs add --cid-version=1` defaults, spelled out
const IMPORT_OPTIONS = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 }),
  shardSplitThresholdBytes: 262144,
  shardSplitStrategy: 'links-bytes',
  shardFanoutBits: 8,
  wrapWithDirectory: false,
  // one at a time, so the order blocks are stored in is deterministic
  fileImportConcurrency: 1,
  blockWriteConcurrency: 1
}

function bytewise (a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

// Entries for the importer: files with content, and folders only when empty (a folder entry
// for a non-empty folder would store an extra empty-folder block).
function * walk (fsPath, ipfsPath, hidden, emptyDirs) {
  const st = fs.lstatSync(fsPath)
  if (st.isFile()) {
    // small files whole (much faster), large ones streamed
    const content = st.size <= 64 * 1048576
      ? fs.readFileSync(fsPath)
      : fs.createReadStream(fsPath, { highWaterMark: 262144 })
    yield { path: ipfsPath, content }
    return
  }
  if (!st.isDirectory()) throw new Error(`${fsPath}: not a regular file or folder`)
  const names = fs.readdirSync(fsPath).filter(n => hidden || !n.startsWith('.')).sort(bytewise)
  if (names.length === 0) {
    emptyDirs.push(ipfsPath)
    yield { path: ipfsPath }
    return
  }
  for (const n of names) yield * walk(path.join(fsPath, n), `${ipfsPath}/${n}`, hidden, emptyDirs)
}

// Records the order in which the importer stores blocks; each block once.
class RecordingBlockstore extends MemoryBlockstore {
  constructor () {
    super()
    this.order = []
    this.seen = new Set()
  }

  async put (cid, bytes, options) {
    const key = cid.toString()
    if (!this.seen.has(key)) {
      this.seen.add(key)
      this.order.push({ cid, bytes })
    }
    return super.put(cid, bytes, options)
  }
}

async function all (it) {
  const out = []
  for await (const x of it) out.push(x)
  return out
}

async function writeCar (carPath, root, blocks) {
  const { writer, out } = CarWriter.create([root])
  const sink = fs.createWriteStream(carPath)
  const finished = new Promise((resolve, reject) => {
    sink.on('finish', resolve)
    sink.on('error', reject)
  })
  const pump = (async () => {
    for await (const chunk of out) {
      if (!sink.write(chunk)) await new Promise(resolve => sink.once('drain', resolve))
    }
    sink.end()
  })()
  for (const { cid, bytes } of blocks) await writer.put({ cid, bytes })
  await writer.close()
  await pump
  await finished
}

async function importTree (args) {
  let carPath = null
  let hidden = false
  const rest = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--car') carPath = args[++i]
    else if (args[i] === '--hidden') hidden = true
    else rest.push(args[i])
  }
  if (rest.length !== 1) {
    process.stderr.write('usage: node oracle.mjs [--car OUT.car] [--hidden] PATH\n')
    process.exitCode = 2
    return
  }
  const top = rest[0].replace(/(.)\/+$/, '$1')
  const topName = path.basename(top)
  const blockstore = new RecordingBlockstore()
  let root = null
  const lines = []
  const emptyDirs = []
  for await (const entry of importer(walk(top, topName, hidden, emptyDirs), blockstore, IMPORT_OPTIONS)) {
    lines.push(`${entry.cid.toString()} ${entry.path}`)
    if (entry.path === topName) root = entry.cid
  }
  if (root == null) throw new Error('the importer gave no root')
  // The importer does not report empty folders below the top (`ipfs add -r` does): they are
  // all the same node, so report them with its CID.
  for (const p of emptyDirs) {
    if (p === topName) continue
    const [entry] = await all(importer([{ path: 'empty' }], new MemoryBlockstore(), IMPORT_OPTIONS))
    lines.push(`${entry.cid.toString()} ${p}`)
  }
  process.stdout.write(lines.join('\n') + '\n')
  if (carPath != null) await writeCar(carPath, root, blockstore.order)
}

async function listCar (carPath) {
  const blocks = await CarBlockIterator.fromIterable(fs.createReadStream(carPath))
  const lines = [`roots ${(await blocks.getRoots()).map(String).join(' ')}`]
  for await (const { cid, bytes } of blocks) {
    const digest = await sha256.digest(bytes)
    if (cid.multihash.code !== sha256.code || Buffer.compare(digest.digest, cid.multihash.digest) !== 0) {
      throw new Error(`${cid}: block does not hash to its CID`)
    }
    lines.push(cid.toString())
  }
  process.stdout.write(lines.join('\n') + '\n')
}

async function rootType (carPath) {
  const blocks = await CarBlockIterator.fromIterable(fs.createReadStream(carPath))
  const [root] = await blocks.getRoots()
  for await (const { cid, bytes } of blocks) {
    if (!cid.equals(root)) continue
    if (cid.code === 0x55) {
      process.stdout.write('raw\n')
    } else {
      process.stdout.write(UnixFS.unmarshal(dagPb.decode(bytes).Data).type + '\n')
    }
    return
  }
  throw new Error('the root is not in the CAR')
}

const argv = process.argv.slice(2)
if (argv[0] === '--ls-car') await listCar(argv[1])
else if (argv[0] === '--root-type') await rootType(argv[1])
else await importTree(argv)
