export { fileHandlePath, handlePathVia, type FileHandle } from './handles.js';
export { KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_EPOLL_TFD, sameKernelObject, kernelObjectOrder, KernelObjects, isEpollTarget, killReleasing, type KillReleased, namespaceFiles, namespaceFilesAt, namespaceRelative, createUserNamespace, type MadeUserNamespace, NS_TYPE, CLOCK_MONOTONIC, CLOCK_BOOTTIME, clockNow } from './process.js';
export { peekPipe, openPipe, setPipeSize, spliceAll, spliceSome, closeFd, type Pipe } from './pipes.js';
export { unixSockets, packetSockets, socketQueue, socketInfo, unixSocketFile, listenBacklog, listenPending, inetShutdown } from './sockets.js';
export { cpuid, xgetbv } from './cpu.js';
export { probeFile, probeFreshSocket, readTaskMapped, takeTaskFd, type SockoptQuery } from './probe.js';
export { SOCKET_OPTIONS, sockoptValue, type SocketOption, type SockoptShape } from './sockopts.js';
export { setNativeBinding, type SysNative, type SocketInfo, type SocketQueue, type UnixSocketFile, type FileProbe, type TtyProbe, type TtyQueues, type UnixSocketDiag, type PacketSocketDiag, type PacketRingDiag, type FailureContext } from './native.js';
export { SeqpacketSocket, SeqpacketServer, seqpacketPair, seqpacketConnect, seqpacketListen, streamConnect, streamListen, acceptConnection, peerCredentials, recvExact, sendWithFds, type Packet, type PeerCredentials } from './packets.js';
export {
  PAGE_IS, PM_SCAN_WP_MATCHING, PM_SCAN_CHECK_WPASYNC, MADV_GUARD_INSTALL, pagemapScan, pagemapScanAll, guardRegions, canInstallGuards,
  type PageRegion, type PagemapScanArgs, type GuardLookup,
} from './memory.js';
export { dataExtents, linkFollow, makeDeviceNode, makeFifo, readLinkAt, setFileTimes, setLinkTimes, type DataExtent, type FileTime } from './files.js';
export { probeTty, takeTtyQueues, putTtyQueues } from './tty.js';
export { UFFD_FEATURE, UFFDIO_REGISTER_MODE, uffdApi, uffdRegister, uffdUnregister, UFFD_EVENT, UFFD_NONCOOP_EVENTS, uffdReadMessages, uffdCopy, uffdZeroPage, pollInput, type UffdMessage } from './uffd.js';
export { SYSV_KIND, SHM_HUGETLB, readSysvObjects, makeSysvObjects, type SysvKind } from './sysvipc.js';
export type { SysvContents, SysvObject, MountOp } from './native.js';
export { cloneMount, MS, MNT_DETACH, mountSteps } from './mounts.js';
export { CgroupYard, yardDirName, type CgroupYardOptions } from './cgyard.js';
export { tcpState, tcpIdle, tcpRepair, tcpSave, tcpRestore, setSocketOption, setFileFlags, type TcpConnState, type TcpIdle, type TcpRestoreArgs } from './tcp.js';
export { setSocketNamespace, inSocketNamespace, createNetNamespace, netLinks, syncLinkState, setLink, addVeth, addMacvlan, addBridge, bridgeSettingsChanged, setLinkMaster, netnsIdOf, setNetnsId, moveLink, enslaveLink, netnsTool, legacyXtablesTool, IFF_UP, ARPHRD_LOOPBACK, type NetLink } from './netns.js';
export { IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE, IFF_DETACH_QUEUE, IFF_PERSIST, tunAttach, taskTunFile, persistentTunDevice, setTunDevice, detachTunQueue, type TunFileInfo } from './tun.js';
