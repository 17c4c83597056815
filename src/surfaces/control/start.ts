import type { ControlConfig } from '../../config/control.js';
import { isPortcullisError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Control } from '../../operate/control.js';
import { ControlServer } from './server.js';

/**
 * Starts the control socket `portcullis run` offers; `null` when off. A socket path written in
 * the configuration that cannot be listened on (another live daemon answers there, a permission)
 * stops the start (rejects). At the default path the daemon runs on without one and says so: the
 * guard protects without it, and two instances on one host must not fight over the default.
 */
export async function startControlSocket(
  control: Control,
  config: ControlConfig | null,
  logger: Logger,
): Promise<ControlServer | null> {
  if (config === null) return null;
  const server = new ControlServer(control, { socket: config.socket, mode: config.mode, logger });
  try {
    await server.start();
  } catch (error) {
    await server.close();
    if (config.explicit) throw error;
    const message = isPortcullisError(error) ? error.message : String(error);
    logger.warn(
      { event: 'control-unavailable', socket: config.socket, error: message },
      `no control socket: ${message}; set control.socket to give this instance its own (portcullis status cannot reach it)`,
    );
    return null;
  }
  logger.info(
    { event: 'control-listening', socket: config.socket, mode: `0${config.mode.toString(8)}` },
    `control socket ${config.socket}`,
  );
  return server;
}
