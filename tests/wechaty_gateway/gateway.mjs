#!/usr/bin/env node
/**
 * Wechaty puppet-service test gateway.
 *
 * Runs a real Wechaty puppet service (gRPC, TLS disabled) on 127.0.0.1,
 * backed by wechaty-puppet-mock, so that a python-wechaty client can connect
 * to it.  Tests drive the fake WeChat world through JSON lines:
 *
 *   stdin  : one command object per line   {"id":1,"cmd":"say",...}
 *   stdout : one reply/event object per line {"id":1,"ok":true,...}
 *   stderr : logs
 *
 * Usage: node gateway.mjs --port PORT [--token TOKEN] [--bind-timeout-ms 5000]
 *        (port 0 = pick a free one; token defaults to insecure_<uuid>)
 * See README.md for the protocol.
 */

// brolog (wechaty's logger) writes info/verbose lines with console.info/log,
// which go to stdout.  stdout is reserved for the protocol, so send every
// console method to stderr *before* anything logs.
for (const name of ['log', 'info', 'debug', 'trace']) {
  // eslint-disable-next-line no-console
  console[name] = (...args) => console.error(...args)
}

import net from 'node:net'
import readline from 'node:readline'
import { randomUUID } from 'node:crypto'
import path from 'node:path'

import * as PUPPET from 'wechaty-puppet'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import { PuppetServer } from 'wechaty-puppet-service'
import { FileBox } from 'file-box'

const { log } = PUPPET
log.level((process.env.WECHATY_LOG || 'warn').toLowerCase())

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

function logErr (...args) {
  process.stderr.write(`[gateway] ${args.join(' ')}\n`)
}

function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function parseArgs (argv) {
  const out = { port: 0, token: undefined, host: '127.0.0.1', bindTimeoutMs: 5000 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`)
      return argv[++i]
    }
    if (a === '--port') out.port = Number(next())
    else if (a.startsWith('--port=')) out.port = Number(a.slice(7))
    else if (a === '--token') out.token = next()
    else if (a.startsWith('--token=')) out.token = a.slice(8)
    else if (a === '--bind-timeout-ms') out.bindTimeoutMs = Number(next())
    else if (a === '--host') out.host = next()
    else if (a.startsWith('--host=')) out.host = a.slice(7)
    else throw new Error(`unknown argument: ${a}`)
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    throw new Error(`bad --port: ${out.port}`)
  }
  out.token = out.token || `insecure_${randomUUID()}`
  return out
}

function pickFreePort (host) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect (host, port, timeoutMs = 1000) {
  return new Promise(resolve => {
    const sock = net.connect({ host, port })
    const done = ok => { sock.destroy(); resolve(ok) }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/* ------------------------------------------------------------------ */
/* the puppet                                                          */
/* ------------------------------------------------------------------ */

const GRPC_STATUS = {
  CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5,
  ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9,
  ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
}

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.gif', '.webp'])
const VIDEO_EXT = new Set(['.mp4', '.mov'])

/**
 * PuppetMock whose send methods return the id of the stored message
 * (python-wechaty's room.say()/msg.say() load the returned id and fail with
 * "no id" otherwise), keep the mention list of the bot's messages, and can be
 * told to fail the next N text sends.
 */
class GatewayPuppet extends PuppetMock {
  constructor (options) {
    super(options)
    this.failSends = { count: 0, message: '', code: 2 }
    this.sideData = new Map() // messageId -> contactId / url payload
    this.started = false
  }

  async onStart () {
    this.started = true
    return super.onStart()
  }

  async onStop () {
    this.started = false
    return super.onStop()
  }

  /** Store a message in the mocker exactly like ContactMock.say().to() does, and return its id. */
  storeMessage ({ talkerId, conversationId, text, type = PUPPET.types.Message.Text, mentionIdList = [], fileBoxJson }) {
    const mocker = this.mocker
    const id = `msg-${randomUUID()}`
    const payload = {
      id,
      talkerId,
      timestamp: Date.now(),
      type,
    }
    if (text !== undefined) payload.text = text
    if (/@/.test(conversationId)) {
      mocker.RoomMock.load(conversationId) // throws if unknown
      payload.roomId = conversationId
      payload.mentionIdList = [...mentionIdList]
    } else {
      mocker.ContactMock.load(conversationId) // throws if unknown
      payload.listenerId = conversationId
    }
    if (fileBoxJson) mocker.cacheFileBoxPayload.set(id, fileBoxJson)
    // MessageMock.create() stores the payload and emits 'message' on the
    // RoomMock / ContactMocks (that is how we observe every message).
    mocker.MessageMock.create(payload)
    // ... and this is what the gRPC event stream forwards to the client.
    this.emit('message', { messageId: id })
    return id
  }

  botSend (conversationId, fields) {
    if (!this.isLoggedIn) throw new Error('not logged in')
    return this.storeMessage({ talkerId: this.currentUserId, conversationId, ...fields })
  }

  async messageSendText (conversationId, text, mentionIdList) {
    log.verbose('GatewayPuppet', 'messageSendText(%s, %s, %s)', conversationId, text, JSON.stringify(mentionIdList || []))
    if (this.failSends.count > 0) {
      this.failSends.count--
      // code + details make wechaty-puppet-service send a clean gRPC status
      // (details = the message only, not the JS stack trace).
      const err = new Error(this.failSends.message)
      err.code = this.failSends.code
      err.details = this.failSends.message
      throw err
    }
    return this.botSend(conversationId, { text, mentionIdList: mentionIdList || [] })
  }

  async messageSendFile (conversationId, file) {
    let json
    try {
      json = file.toJSON()
    } catch (e) {
      json = FileBox.fromBase64(await file.toBase64(), file.name).toJSON()
    }
    const ext = path.extname(file.name || '').toLowerCase()
    const type = IMAGE_EXT.has(ext)
      ? PUPPET.types.Message.Image
      : VIDEO_EXT.has(ext) ? PUPPET.types.Message.Video : PUPPET.types.Message.Attachment
    return this.botSend(conversationId, { type, text: file.name, fileBoxJson: json })
  }

  async messageSendContact (conversationId, contactId) {
    const id = this.botSend(conversationId, { type: PUPPET.types.Message.Contact, text: contactId })
    this.sideData.set(id, contactId)
    return id
  }

  async messageContact (messageId) {
    return this.sideData.get(messageId) || ''
  }

  async messageSendUrl (conversationId, urlLinkPayload) {
    const id = this.botSend(conversationId, { type: PUPPET.types.Message.Url, text: urlLinkPayload.url })
    this.sideData.set(id, urlLinkPayload)
    return id
  }

  async messageUrl (messageId) {
    const p = this.sideData.get(messageId)
    return (p && typeof p === 'object') ? p : super.messageUrl(messageId)
  }

  /** PuppetMock answers 'mock alias' for everybody; use the payload instead. */
  async contactAlias (contactId, alias) {
    if (typeof alias === 'undefined') {
      return this.mocker.contactPayload(contactId).alias || ''
    }
    this.mocker.contactPayload(contactId).alias = alias || undefined
    await this.dirtyPayload(PUPPET.types.Dirty.Contact, contactId)
  }

  /** PuppetMock ignores topic changes made by the bot; apply them and emit room-topic. */
  async roomTopic (roomId, topic) {
    const payload = this.mocker.roomPayload(roomId)
    if (typeof topic === 'undefined') return payload.topic
    this.mocker.RoomMock.load(roomId).topic(topic).by(this.mocker.ContactMock.load(this.currentUserId))
    await this.dirtyPayload(PUPPET.types.Dirty.Room, roomId)
  }
}

/* ------------------------------------------------------------------ */
/* the world                                                           */
/* ------------------------------------------------------------------ */

const mocker = new mock.Mocker()
const puppet = new GatewayPuppet({ mocker })
const world = { botId: undefined, observedRooms: new Set() }

// Runs each time the client (re)starts the puppet: log the bot in.
mocker.use(function loginBot (m) {
  if (world.botId && !m.puppet.isLoggedIn) {
    m.login(m.ContactMock.load(world.botId))
  }
  return () => {}
})

function reportMessage (msg) {
  const p = msg.payload
  send({
    event: 'message',
    id: p.id,
    room: p.roomId || null,
    talker: p.talkerId,
    to: p.listenerId || null,
    text: p.text ?? '',
    type: PUPPET.types.Message[p.type] || String(p.type),
    timestamp: p.timestamp,
    self: !!world.botId && p.talkerId === world.botId,
    mentions: p.mentionIdList || [],
  })
}

function loadContact (id) {
  return mocker.ContactMock.load(id)
}

function loadRoom (id) {
  return mocker.RoomMock.load(id)
}

function upsertContact ({ id, name, alias, ...rest }) {
  if (!id) throw new Error('contact without id')
  if (mocker.cacheContactPayload.has(id)) {
    const payload = mocker.contactPayload(id)
    if (name !== undefined) payload.name = name
    if (alias !== undefined) payload.alias = alias
    Object.assign(payload, rest)
    return loadContact(id)
  }
  const contact = mocker.createContact({
    id,
    name: name ?? id,
    alias: alias ?? undefined,
    type: PUPPET.types.Contact.Individual,
    friend: true,
    ...rest,
  })
  // direct (non-room) messages: report once, from the receiving contact
  contact.on('message', msg => {
    if (!msg.payload.roomId && msg.payload.listenerId === id) reportMessage(msg)
  })
  return contact
}

function upsertRoom ({ id, topic, members, memberIdList, owner, ownerId }) {
  if (!id) throw new Error('room without id')
  if (!id.includes('@')) throw new Error(`room id must contain "@" (e.g. "${id}@chatroom"): ${id}`)
  const memberIds = [...(members || memberIdList || [])]
  for (const cid of memberIds) {
    if (!mocker.cacheContactPayload.has(cid)) upsertContact({ id: cid })
  }
  const own = owner || ownerId || memberIds.find(m => m !== world.botId) || memberIds[0]
  let room
  if (mocker.cacheRoomPayload.has(id)) {
    room = loadRoom(id)
    const payload = mocker.roomPayload(id)
    if (topic !== undefined) payload.topic = topic
    if (members || memberIdList) {
      payload.memberIdList.length = 0
      payload.memberIdList.push(...memberIds)
    }
    if (own) payload.ownerId = own
  } else {
    room = mocker.createRoom({
      id,
      topic: topic ?? id,
      ownerId: own,
      adminIdList: own ? [own] : [],
      memberIdList: memberIds,
    })
  }
  if (!world.observedRooms.has(id)) {
    world.observedRooms.add(id)
    room.on('message', reportMessage)
  }
  return room
}

function clientAttached () {
  return puppet.isLoggedIn && puppet.listenerCount('message') > 0
}

async function waitClient (timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (!clientAttached()) {
    if (Date.now() > deadline) {
      throw new Error(`timeout after ${timeoutMs}ms waiting for the client `
        + `(loggedIn=${puppet.isLoggedIn}, messageListeners=${puppet.listenerCount('message')})`)
    }
    await sleep(50)
  }
}

/* ------------------------------------------------------------------ */
/* commands                                                            */
/* ------------------------------------------------------------------ */

const DEFAULT_TIMEOUT_MS = 20000

const commands = {
  async ping () {
    return {}
  },

  async state () {
    return {
      bot: world.botId || null,
      started: puppet.started,
      loggedIn: puppet.isLoggedIn,
      clientAttached: clientAttached(),
      contacts: [...mocker.cacheContactPayload.keys()],
      rooms: [...mocker.cacheRoomPayload.values()].map(r => ({ id: r.id, topic: r.topic, members: [...r.memberIdList] })),
    }
  },

  async setup (cmd) {
    const contacts = cmd.contacts || []
    const rooms = cmd.rooms || []
    if (cmd.bot) {
      if (world.botId && world.botId !== cmd.bot.id && puppet.isLoggedIn) {
        throw new Error(`bot ${world.botId} is already logged in; cannot switch to ${cmd.bot.id}`)
      }
      upsertContact(cmd.bot)
      world.botId = cmd.bot.id
    }
    for (const c of contacts) upsertContact(c)
    for (const r of rooms) upsertRoom(r)
    // Normally setup runs before the client starts the puppet (the mocker
    // behaviour logs the bot in then).  If the puppet is already running,
    // log in now.
    if (world.botId && puppet.started && !puppet.isLoggedIn) {
      mocker.login(loadContact(world.botId))
    }
    return { bot: world.botId || null, contacts: contacts.length, rooms: rooms.length }
  },

  async wait_client (cmd) {
    await waitClient(cmd.timeout_ms ?? DEFAULT_TIMEOUT_MS)
    return { bot: puppet.currentUserId }
  },

  async say (cmd) {
    if (!cmd.contact) throw new Error('say: "contact" is required')
    if (cmd.text === undefined) throw new Error('say: "text" is required')
    loadContact(cmd.contact)
    if (cmd.wait !== false) await waitClient(cmd.timeout_ms ?? DEFAULT_TIMEOUT_MS)
    const conversationId = cmd.room || cmd.to || world.botId
    if (!conversationId) throw new Error('say: need "room" (or "to")')
    for (const m of cmd.mentions || []) loadContact(m)
    const messageId = puppet.storeMessage({
      talkerId: cmd.contact,
      conversationId,
      text: String(cmd.text),
      mentionIdList: cmd.mentions || [],
    })
    return { message_id: messageId }
  },

  /** Deliver an existing message to the client again (puppets re-deliver after reconnects). */
  async redeliver (cmd) {
    if (!cmd.message_id) throw new Error('redeliver: "message_id" is required')
    if (!mocker.cacheMessagePayload.has(cmd.message_id)) {
      throw new Error(`redeliver: unknown message ${cmd.message_id}`)
    }
    if (cmd.wait !== false) await waitClient(cmd.timeout_ms ?? DEFAULT_TIMEOUT_MS)
    puppet.emit('message', { messageId: cmd.message_id })
    return { message_id: cmd.message_id }
  },

  async remove_member (cmd) {
    const room = loadRoom(cmd.room)
    const removee = loadContact(cmd.contact)
    const payload = mocker.roomPayload(cmd.room)
    const removerId = cmd.by
      || (payload.ownerId && payload.ownerId !== cmd.contact ? payload.ownerId : undefined)
      || payload.memberIdList.find(m => m !== cmd.contact)
      || cmd.contact
    // mutates memberIdList and emits 'room-leave' {removeeIdList, removerId, roomId, timestamp}
    room.remove(removee).by(loadContact(removerId))
    await puppet.dirtyPayload(PUPPET.types.Dirty.Room, cmd.room)
    await puppet.dirtyPayload(PUPPET.types.Dirty.RoomMember, cmd.room)
    return { remover: removerId, members: [...payload.memberIdList] }
  },

  async add_member (cmd) {
    const room = loadRoom(cmd.room)
    const invitee = upsertContact({ id: cmd.contact, ...(cmd.name ? { name: cmd.name } : {}) })
    const payload = mocker.roomPayload(cmd.room)
    const inviterId = cmd.by || payload.ownerId || payload.memberIdList[0]
    // emits 'room-join' {inviteeIdList, inviterId, roomId, timestamp}
    room.add(invitee).by(loadContact(inviterId))
    await puppet.dirtyPayload(PUPPET.types.Dirty.Room, cmd.room)
    await puppet.dirtyPayload(PUPPET.types.Dirty.RoomMember, cmd.room)
    return { inviter: inviterId, members: [...payload.memberIdList] }
  },

  async topic (cmd) {
    if (typeof cmd.topic !== 'string') throw new Error('topic: "topic" (string) is required')
    const room = loadRoom(cmd.room)
    const payload = mocker.roomPayload(cmd.room)
    const oldTopic = payload.topic
    const changerId = cmd.by || payload.ownerId || payload.memberIdList.find(m => m !== world.botId)
    // emits 'room-topic' {changerId, newTopic, oldTopic, roomId, timestamp}, then sets payload.topic
    room.topic(cmd.topic).by(loadContact(changerId))
    await puppet.dirtyPayload(PUPPET.types.Dirty.Room, cmd.room)
    return { old_topic: oldTopic, topic: cmd.topic, changer: changerId }
  },

  async fail_sends (cmd) {
    const count = Number(cmd.count ?? 1)
    if (!Number.isInteger(count) || count < 0) throw new Error('fail_sends: bad count')
    // gRPC status code: number or name (e.g. "RESOURCE_EXHAUSTED"); default UNKNOWN (2)
    let code = cmd.code ?? 2
    if (typeof code === 'string') {
      if (!(code in GRPC_STATUS)) throw new Error(`fail_sends: unknown gRPC status ${code}`)
      code = GRPC_STATUS[code]
    }
    if (!Number.isInteger(code) || code < 1 || code > 16) throw new Error('fail_sends: bad code')
    puppet.failSends = { count, message: cmd.message || 'send failed (fail_sends)', code }
    return { count, code }
  },

  async stop () {
    setImmediate(() => shutdown(0, 'stop command'))
    return {}
  },
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

let server
let shuttingDown = false

async function shutdown (code, why) {
  if (shuttingDown) return
  shuttingDown = true
  logErr(`shutting down (${why})`)
  const hardExit = setTimeout(() => process.exit(code), 3000)
  hardExit.unref()
  try {
    if (server) await server.stop()
  } catch (e) {
    logErr('server.stop() failed:', e && e.message)
  }
  try {
    if (puppet.started) await puppet.stop()
  } catch (e) {
    logErr('puppet.stop() failed:', e && e.message)
  }
  // let stdout drain before exiting
  process.stdout.write('', () => process.exit(code))
}

async function handleLine (line) {
  line = line.trim()
  if (!line) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (e) {
    send({ ok: false, error: `bad json: ${e.message}` })
    return
  }
  const id = cmd && Object.prototype.hasOwnProperty.call(cmd, 'id') ? cmd.id : undefined
  const fn = cmd && commands[cmd.cmd]
  if (!fn) {
    send({ id, ok: false, error: `unknown cmd: ${cmd && cmd.cmd}` })
    return
  }
  try {
    const result = await fn(cmd)
    send({ id, ok: true, ...result })
  } catch (e) {
    send({ id, ok: false, error: (e && e.message) || String(e) })
  }
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const port = args.port || await pickFreePort(args.host)
  const endpoint = `${args.host}:${port}`

  // A restarted gateway may race the previous process' exit: retry
  // EADDRINUSE for a few seconds instead of failing at once.
  const bindDeadline = Date.now() + args.bindTimeoutMs
  for (;;) {
    server = new PuppetServer({
      endpoint,
      puppet,
      token: args.token,
      tls: { disable: true },
    })
    try {
      await server.start()
      break
    } catch (e) {
      try { await server.stop() } catch (_) { /* ignore */ }
      server = undefined
      if (!/EADDRINUSE/.test(String(e && e.message)) || Date.now() > bindDeadline) throw e
      logErr(`${endpoint} in use, retrying ...`)
      await sleep(200)
    }
  }
  if (!await canConnect(args.host, port)) {
    throw new Error(`gRPC server does not accept connections on ${endpoint}`)
  }
  logErr(`listening on ${endpoint}`)
  send({ event: 'listening', port, token: args.token, endpoint })

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  // Commands run one at a time, in the order received, so replies come back
  // in order too.  On stdin EOF, finish the queued commands, then exit.
  let queue = Promise.resolve()
  rl.on('line', line => { queue = queue.then(() => handleLine(line)) })
  rl.on('close', () => { queue.then(() => shutdown(0, 'stdin closed')) })
}

process.on('SIGTERM', () => shutdown(0, 'SIGTERM'))
process.on('SIGINT', () => shutdown(0, 'SIGINT'))
process.on('unhandledRejection', e => logErr('unhandledRejection:', (e && e.stack) || e))
process.on('uncaughtException', e => logErr('uncaughtException:', (e && e.stack) || e))

main().catch(e => {
  logErr('fatal:', (e && e.stack) || e)
  send({ event: 'fatal', error: (e && e.message) || String(e) })
  process.exit(1)
})
